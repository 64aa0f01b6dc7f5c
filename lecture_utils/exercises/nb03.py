"""Self-checks for notebook 03, the cost of MAML and its two cheap approximations (notes: 「문제점과 대안」).

- ``check_saved_mib_prediction``: a function that extends the second-order memory line; called on
  lines the check makes up (where measuring cannot help), then on a short line measured on the
  notebook's model, extended to 20 inner steps: the check builds that graph and measures it.
- ``check_first_order_adapt``: write one first-order inner step (dφ/dθ treated as I); the check
  compares the meta-gradient through it with the package's first- and second-order ones, on three
  networks and step sizes.
- ``check_head_fraction``: a function giving the share of Conv4's parameters that head-only
  adaptation (ANIL) adapts, called on sizes of Conv4 the notebook does not print.
- ``check_tasks_needed``: a function giving how many held-out tasks a 95% interval of a given
  half-width needs, called on the notebook's accuracies and on accuracies of the check's own.

Every public ``check_*`` prints one line ("Correct: ..." or "Not yet: ...") and returns None.
The checks that depend on trained models or data compute their expected value from the objects
the notebook passes in (the model and task it measured, its per-task accuracies), never from
numbers stored here, so they hold when the data or the checkpoints change. While the student's
function runs, the helpers that compute its answer (here and in the package) are unavailable.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lecture_utils.cost import graph_saved_bytes
from lecture_utils.exercises import as_number, call_student, student_number, unavailable, verdict
from lecture_utils.maml import MAML, adapt
from lecture_utils.models import Conv4, SineMLP, forward_with, is_head, parameters_of
from lecture_utils.sinusoid import SinusoidTasks


# --- Exercise 1: extend the memory line ------------------------------------------------------------

_MEASURING = ("lecture_utils.exercises.nb03._saved_mib", "lecture_utils.cost.graph_saved_bytes",
              "lecture_utils.cost.measure")


def _saved_mib(model, batch, steps: int, inner_lr: float = 0.4) -> float:
    """MiB the autograd graph of one second-order meta-loss saves for backward (``steps`` inner steps)."""
    loss, _ = MAML("classification", inner_lr=inner_lr, inner_steps=steps).objective(model, batch)
    return graph_saved_bytes(loss) / 2**20


def _made_up_lines():
    """(steps, MiB on an exact straight line, steps to predict, the line's value there)."""
    g = torch.Generator().manual_seed(20)
    lines = []
    for _ in range(3):
        n_points = int(torch.randint(2, 6, (1,), generator=g))
        steps = sorted((torch.randperm(12, generator=g)[:n_points] + 1).tolist())
        intercept, slope = 1 + 19 * torch.rand(1, generator=g).item(), 0.5 + 7.5 * torch.rand(1, generator=g).item()
        target = int(torch.randint(15, 41, (1,), generator=g))
        lines.append((steps, [intercept + slope * s for s in steps], target, intercept + slope * target))
    return lines


def check_saved_mib_prediction(predict_mib, model, batch, steps: int = 20) -> None:
    """Exercise 1: ``predict_mib(steps, mib, n_steps)`` -> the MiB on the straight line through the
    points (steps[i], mib[i]) at ``n_steps``. Checked on made-up lines, then on the second-order
    memory of ``model`` and ``batch`` for 1, 2 and 3 inner steps, extended to ``steps`` steps: within
    2% of the measured value."""
    if not callable(predict_mib):
        verdict(False, "", "predict_mib should be a function of (steps, mib, n_steps): the check calls it on lines "
                           "of its own, so a number is not enough. Fill in the TODO.")
        return
    for known, mib, target, want in _made_up_lines():
        with unavailable(*_MEASURING, student=predict_mib):
            value = student_number(predict_mib, list(known), list(mib), target, name="predict_mib",
                                   none_hint="return the predicted MiB (fill in the TODO).")
        if value is None:
            return
        if not math.isclose(value, want, rel_tol=1e-6):
            verdict(False, "", f"on a made-up line through {len(known)} points (steps {known}), predict_mib(..., {target}) "
                               f"gave {value:.4g} instead of {want:.4g}. Use the arguments: slope = the MiB one more "
                               "step adds, (mib[-1] - mib[0]) / (steps[-1] - steps[0]), then "
                               "mib[0] + slope * (n_steps - steps[0]).")
            return
    short = [1, 2, 3]
    measured = [_saved_mib(model, batch, s) for s in short]
    with unavailable(*_MEASURING, student=predict_mib):
        predicted = student_number(predict_mib, list(short), list(measured), steps, name="predict_mib",
                                   none_hint="return the predicted MiB (fill in the TODO).")
    if predicted is None:
        return
    actual = _saved_mib(model, batch, steps)
    verdict(math.isclose(predicted, actual, rel_tol=0.02),
            f"your line predicts {predicted:.1f} MiB for {steps} second-order inner steps, and the graph saves "
            f"{actual:.1f} MiB: every inner step adds the same memory.",
            f"your function is right on made-up lines, but from the measured 1, 2 and 3 steps it predicts "
            f"{predicted:.1f} MiB for {steps} steps, and the graph saves {actual:.1f} MiB.")


# --- Exercise 2: the first-order inner step ------------------------------------------------------

def _package_phi(model, theta, x_spt, y_spt, alpha, first_order: bool):
    """ϕ after one inner step of the package's ``adapt`` (the one call here that names an approximation)."""
    return adapt(model, theta, x_spt, y_spt, loss_fn=F.mse_loss, steps=1, inner_lr=alpha,
                 first_order=first_order)


def _sine_problems():
    """Small, fixed sinusoid tasks, seeded MLPs of three widths (float64, so comparisons are tight)
    and three inner step sizes, the first of them the notebook's α."""
    problems = []
    for seed, hidden, alpha in ((3, 40, 0.01), (5, 12, 0.23), (7, 20, 0.0637)):
        with torch.random.fork_rng(devices=[]):  # leave the notebook's random state alone
            torch.manual_seed(seed)
            model = SineMLP(hidden=hidden).double()
        batch = SinusoidTasks().sample(1, 10, 10, torch.Generator().manual_seed(seed))
        problems.append((model, *(t[0].double() for t in batch.tasks), alpha))
    return problems


def _meta_gradient(model, phi, x_qry, y_qry):
    theta = parameters_of(model)
    loss = F.mse_loss(forward_with(model, phi, x_qry), y_qry)
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(theta.values()))])


def check_first_order_adapt(first_order_adapt) -> None:
    """Exercise 2: ``first_order_adapt(theta, grads, alpha) -> phi`` (dicts name -> tensor), one
    inner step whose meta-gradient is the first-order one; on three networks and step sizes."""
    if not callable(first_order_adapt):
        verdict(False, "", "first_order_adapt should be a function of (theta, grads, alpha): define it above.")
        return
    for model, x_spt, y_spt, x_qry, y_qry, alpha in _sine_problems():
        theta = parameters_of(model)
        spt_loss = F.mse_loss(forward_with(model, theta, x_spt), y_spt)
        grads = dict(zip(theta, torch.autograd.grad(spt_loss, list(theta.values()), create_graph=True)))
        reference = {first_order: _meta_gradient(model, _package_phi(model, theta, x_spt, y_spt, alpha, first_order),
                                                 x_qry, y_qry)
                     for first_order in (True, False)}
        with unavailable("lecture_utils.maml.adapt", student=first_order_adapt):
            ran, phi = call_student(first_order_adapt, dict(theta), dict(grads), alpha, name="first_order_adapt")
        if not ran:
            return
        if phi is None:
            verdict(False, "", "your function returned None: return the dict phi.")
            return
        if not isinstance(phi, dict) or set(phi) != set(theta) or not all(torch.is_tensor(v) for v in phi.values()):
            verdict(False, "", "return a dict with the same names as theta: {name: new tensor}.")
            return
        if not all(phi[n].shape == theta[n].shape and torch.allclose(phi[n].detach(), theta[n] - alpha * grads[n],
                                                                     rtol=1e-9, atol=1e-12) for n in theta):
            step = "the step size is alpha, the argument (the check uses several), and " if alpha != 0.01 else ""
            verdict(False, "", f"phi has the wrong values (alpha = {alpha}): {step}one plain gradient step is "
                               "theta - alpha * grads.")
            return
        try:
            mine = _meta_gradient(model, phi, x_qry, y_qry)
        except RuntimeError as err:
            verdict(False, "", f"the outer gradient cannot reach theta through your phi ({str(err).splitlines()[0]}); "
                               "keep theta in the expression and cut only the gradient's graph.")
            return
        if torch.allclose(mine, reference[False], rtol=1e-9, atol=1e-12):
            verdict(False, "", "that is the second-order step: the outer gradient still flows through grads. "
                               "Cut its graph with .detach().")
            return
        if not torch.allclose(mine, reference[True], rtol=1e-9, atol=1e-12):
            verdict(False, "", "the meta-gradient through your step is neither first nor second order; "
                               "write phi[n] = theta[n] - alpha * grads[n].detach().")
            return
    verdict(True, "the meta-gradient through your step is the first-order one (dphi/dtheta = I), on three "
                  "networks and step sizes.", "")


# --- Exercise 3: how much does head-only adaptation adapt? ------------------------------------------

def _head_fraction(n_way: int = 5, hidden: int = 32) -> float:
    counts = [(is_head(n), p.numel()) for n, p in Conv4(n_way, hidden).named_parameters()]
    return sum(c for head, c in counts if head) / sum(c for _, c in counts)


def check_head_fraction(head_fraction, n_way: int = 5, hidden: int = 32) -> None:
    """Exercise 3: ``head_fraction(n_way, hidden)`` -> head parameters / all parameters of
    ``Conv4(n_way, hidden)``; called for ``(n_way, hidden)`` and for sizes the notebook does not print."""
    if not callable(head_fraction):
        verdict(False, "", "head_fraction should be a function of (n_way, hidden): the check calls it on sizes of "
                           "its own, so a number is not enough. Fill in the TODO.")
        return
    for ways, channels in ((n_way, hidden), (20, 64), (3, 8), (11, 16)):
        expected = _head_fraction(ways, channels)
        with unavailable("lecture_utils.exercises.nb03._head_fraction", student=head_fraction):
            value = student_number(head_fraction, ways, channels, name="head_fraction",
                                   none_hint="return the fraction (fill in the TODO).")
        if value is None:
            return
        if math.isclose(value, expected, rel_tol=1e-9):
            continue
        where = f"for Conv4({ways}, hidden={channels})"
        if math.isclose(value, 1 / expected, rel_tol=1e-6):
            hint = "that is the inverse: head parameters divided by all parameters."
        elif math.isclose(value, 100 * expected, rel_tol=1e-6):
            hint = "that looks like a percentage: give the fraction (between 0 and 1)."
        elif math.isclose(value, expected / (1 - expected), rel_tol=1e-6):
            hint = "that is head / (all - head): divide by all parameters, the head's included."
        elif abs(value - expected) <= 0.5e-4:
            hint = "close, but rounded: return the fraction as computed from the arguments, not a typed value."
        else:
            hint = ("count elements (p.numel()), not tensors, over parameters_of(Conv4(n_way, hidden=hidden)), "
                    "using the arguments.")
        verdict(False, "", f"{where} head_fraction gave {value:.4g} instead of {expected:.4g}: {hint}")
        return
    verdict(True, f"the head holds {_head_fraction(n_way, hidden):.2%} of the parameters of Conv4({n_way}, "
                  f"hidden={hidden}), and your function is right on 3 other sizes.", "")


# --- Exercise 4: how many held-out tasks? ------------------------------------------------------------

def _tasks_needed(per_task_accuracy, half_width: float) -> float:
    std = torch.as_tensor(per_task_accuracy, dtype=torch.float64).std().item()
    return (1.96 * std / half_width) ** 2


def _made_up_accuracies():
    """(per-task accuracies as fractions, half-width): spreads and widths of the check's own."""
    g = torch.Generator().manual_seed(4)
    return [((0.55 + 0.4 * torch.rand(80, generator=g)).clamp(0, 1), 0.02),
            ((0.3 + 0.25 * torch.randn(150, generator=g)).clamp(0, 1), 0.005)]


def check_tasks_needed(tasks_needed, per_task_accuracy, half_width: float = 0.01) -> None:
    """Exercise 4: ``tasks_needed(per_task, half_width)`` -> tasks for a 95% interval of +-``half_width``,
    from the spread of ``per_task``; called on ``per_task_accuracy`` and on accuracies of the check's own."""
    if not callable(tasks_needed):
        verdict(False, "", "tasks_needed should be a function of (per_task, half_width): the check calls it on "
                           "accuracies of its own, so a number is not enough. Fill in the TODO.")
        return
    notebook = torch.as_tensor(per_task_accuracy)
    for accuracies, width in [(notebook, half_width)] + _made_up_accuracies():
        expected = _tasks_needed(accuracies, width)
        with unavailable("lecture_utils.exercises.nb03._tasks_needed", student=tasks_needed):
            value = student_number(tasks_needed, accuracies.clone(), width, name="tasks_needed",
                                   none_hint="return the number of tasks (fill in the TODO).")
        if value is None:
            return
        if math.isclose(value, expected, rel_tol=0.03, abs_tol=1):
            continue
        std = accuracies.double().std().item()
        if math.isclose(value, math.sqrt(expected), rel_tol=0.05):
            hint = "square it: half-width = 1.96 * std / sqrt(n), so n = (1.96 * std / half-width) ** 2."
        elif math.isclose(value, expected * 1e4, rel_tol=0.05):
            hint = "the accuracies are fractions here (0.9, not 90%): use them as they come."
        elif math.isclose(value, (1.96 * std ** 2 / width) ** 2, rel_tol=0.05):
            hint = "that uses the variance; the interval needs the standard deviation, .std()."
        else:
            hint = ("solve half-width = 1.96 * std / sqrt(n) for n, with std the standard deviation of the "
                    "per-task accuracies and 1.96 the 95% factor of the normal distribution.")
        verdict(False, "", f"for {len(accuracies)} accuracies with std {std:.3f} and half-width {width}, tasks_needed "
                           f"gave {value:.0f} instead of about {expected:.0f}: {hint}")
        return
    verdict(True, f"about {math.ceil(_tasks_needed(notebook, half_width))} tasks for +-{half_width:g}: the interval "
                  "shrinks like 1/sqrt(tasks), so halving it takes four times the tasks.", "")

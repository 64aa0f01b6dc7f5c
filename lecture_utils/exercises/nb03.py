"""Self-checks for notebook 03, the cost of MAML and its two cheap approximations (notes: 「문제점과 대안」).

- ``check_saved_mib_prediction``: extrapolate the second-order memory line to 20 inner steps;
  the check builds that graph and measures it.
- ``check_first_order_adapt``: write one first-order inner step (dφ/dθ treated as I); the check
  compares the meta-gradient through it with the package's first- and second-order ones.
- ``check_head_fraction``: the share of Conv4's parameters that head-only adaptation (ANIL) adapts.
- ``check_tasks_needed``: how many held-out tasks a 95% interval of a given half-width needs.

Every public ``check_*`` prints one line ("Correct: ..." or "Not yet: ...") and returns None.
The checks that depend on trained models or data compute their expected value from the objects
the notebook passes in (the model and task it measured, its per-task accuracies), never from
numbers stored here, so they hold when the data or the checkpoints change.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lecture_utils.cost import graph_saved_bytes
from lecture_utils.exercises import as_number, call_student, check_close, verdict
from lecture_utils.maml import MAML, adapt
from lecture_utils.models import Conv4, SineMLP, forward_with, is_head, parameters_of
from lecture_utils.sinusoid import SinusoidTasks


# --- Exercise 1: extrapolate the memory line ------------------------------------------------------

def saved_mib(model, batch, steps: int, first_order: bool = False, inner_lr: float = 0.4) -> float:
    """MiB the autograd graph of one meta-loss saves for backward (``steps`` inner steps)."""
    loss, _ = MAML("classification", inner_lr=inner_lr, inner_steps=steps, first_order=first_order).objective(model, batch)
    return graph_saved_bytes(loss) / 2**20


def check_saved_mib_prediction(predicted_mib, model, batch, steps: int = 20) -> None:
    """Exercise 1: the predicted MiB of a second-order meta-loss with ``steps`` inner steps,
    within 2% of the measured value (measured here, on ``model`` and ``batch``)."""
    value = as_number(predicted_mib, "predicted_mib")
    if value is None:
        return
    measured = saved_mib(model, batch, steps)
    if math.isclose(value, measured, rel_tol=0.02):
        verdict(True, f"the graph of {steps} second-order inner steps saves {measured:.1f} MiB, as the line predicts.", "")
    else:
        verdict(False, "", f"{value:.1f} MiB is off by more than 2% of the measurement. Fit the line through "
                           "the second-order column: intercept + slope * steps, with slope = the MiB one more "
                           "inner step adds.")


# --- Exercise 2: the first-order inner step ------------------------------------------------------

def _sine_problem():
    """A small, fixed sinusoid task and a seeded 1-40-40-1 MLP (float64, so comparisons are tight)."""
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random state alone
        torch.manual_seed(3)
        model = SineMLP().double()
    batch = SinusoidTasks().sample(1, 10, 10, torch.Generator().manual_seed(3))
    x_spt, y_spt, x_qry, y_qry = (t[0].double() for t in batch.tasks)
    return model, x_spt, y_spt, x_qry, y_qry


def _meta_gradient(model, phi, x_qry, y_qry):
    theta = parameters_of(model)
    loss = F.mse_loss(forward_with(model, phi, x_qry), y_qry)
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(theta.values()))])


def check_first_order_adapt(first_order_adapt) -> None:
    """Exercise 2: ``first_order_adapt(theta, grads, alpha) -> phi`` (dicts name -> tensor), one
    inner step whose meta-gradient is the first-order one."""
    if first_order_adapt is None:
        verdict(False, "", "first_order_adapt is still None: define the function above.")
        return
    model, x_spt, y_spt, x_qry, y_qry = _sine_problem()
    theta, alpha = parameters_of(model), 0.01
    spt_loss = F.mse_loss(forward_with(model, theta, x_spt), y_spt)
    grads = dict(zip(theta, torch.autograd.grad(spt_loss, list(theta.values()), create_graph=True)))
    ran, phi = call_student(first_order_adapt, theta, grads, alpha)
    if not ran:
        return
    if phi is None:
        verdict(False, "", "your function returned None: return the dict phi.")
        return
    if not isinstance(phi, dict) or set(phi) != set(theta):
        verdict(False, "", "return a dict with the same names as theta: {name: new tensor}.")
        return
    reference = {}
    for approx in ("first_order", "second_order"):
        phi_ref = adapt(model, theta, x_spt, y_spt, loss_fn=F.mse_loss, steps=1, inner_lr=alpha,
                        first_order=approx == "first_order")
        reference[approx] = _meta_gradient(model, phi_ref, x_qry, y_qry)
    values_ok = all(torch.allclose(phi[n].detach(), theta[n] - alpha * grads[n], rtol=1e-9, atol=1e-12)
                    for n in theta)
    if not values_ok:
        verdict(False, "", "phi has the wrong values: one plain gradient step, theta - alpha * grads.")
        return
    try:
        mine = _meta_gradient(model, phi, x_qry, y_qry)
    except RuntimeError as err:
        verdict(False, "", f"the outer gradient cannot reach theta through your phi ({err}); "
                           "keep theta in the expression and cut only the gradient's graph.")
        return
    if torch.allclose(mine, reference["second_order"], rtol=1e-9, atol=1e-12):
        verdict(False, "", "that is the second-order step: the outer gradient still flows through grads. "
                           "Cut its graph with .detach().")
    elif torch.allclose(mine, reference["first_order"], rtol=1e-9, atol=1e-12):
        verdict(True, "the meta-gradient through your step is the first-order one: dphi/dtheta = I.", "")
    else:
        verdict(False, "", "the meta-gradient through your step is neither first nor second order; "
                           "write phi[n] = theta[n] - alpha * grads[n].detach().")


# --- Exercise 3: how much does head-only adaptation adapt? ------------------------------------------

def head_fraction(n_way: int = 5, hidden: int = 32) -> float:
    model = Conv4(n_way, hidden)
    counts = [(is_head(n), p.numel()) for n, p in model.named_parameters()]
    return sum(c for head, c in counts if head) / sum(c for _, c in counts)


def check_head_fraction(fraction, n_way: int = 5, hidden: int = 32) -> None:
    """Exercise 3: head parameters / all parameters of ``Conv4(n_way, hidden)``.

    Accepts the fraction to the precision the notebook prints it (``f"{fraction:.2%}"``), e.g.
    0.0058 for 0.58%."""
    value = as_number(fraction, "fraction")
    if value is None:
        return
    expected = head_fraction(n_way, hidden)
    printed = 0.5e-4  # half of the last digit of a percentage printed with two decimals
    if math.isclose(value, 1 / expected, rel_tol=1e-3):
        verdict(False, "", "that is the inverse: head parameters divided by all parameters.")
    elif abs(value - 100 * expected) <= 100 * printed:
        verdict(False, "", "that looks like a percentage: give the fraction (between 0 and 1).")
    elif abs(value - expected) <= printed + 1e-12:
        verdict(True, f"the head holds {expected:.2%} of the parameters.", "")
    else:
        check_close(value, expected, rtol=1e-3, what="the head's share of the parameters")


# --- Exercise 4: how many held-out tasks? ------------------------------------------------------------

def tasks_needed(per_task_accuracy, half_width: float) -> int:
    std = torch.as_tensor(per_task_accuracy, dtype=torch.float64).std().item()
    return math.ceil((1.96 * std / half_width) ** 2)


def check_tasks_needed(n_tasks, per_task_accuracy, half_width: float = 0.01) -> None:
    """Exercise 4: tasks for a 95% interval of +-``half_width``, from the spread of ``per_task_accuracy``."""
    value = as_number(n_tasks, "n_tasks")
    if value is None:
        return
    expected = tasks_needed(per_task_accuracy, half_width)
    if math.isclose(value, expected, rel_tol=0.02, abs_tol=1):
        verdict(True, f"about {expected} tasks: the interval shrinks like 1/sqrt(tasks).", "")
    elif math.isclose(value, math.sqrt(expected), rel_tol=0.05):
        verdict(False, "", "square it: half-width = 1.96 * std / sqrt(n), so n = (1.96 * std / half-width) ** 2.")
    else:
        verdict(False, "", f"{value:.0f} is off. Solve half-width = 1.96 * std / sqrt(n) for n, with std the "
                           "standard deviation of the per-task accuracies (as fractions, not percent).")

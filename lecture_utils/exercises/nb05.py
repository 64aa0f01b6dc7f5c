"""Self-checks for notebook 05 (notes: 「Appendix C: Reptile」).

1. ``check_reptile_update``: a function ``reptile_update(theta, phis, epsilon)``, called on random
   parameters, numbers of tasks and step sizes the student never saw.
2. ``check_one_step_coefficient``: a function that measures c in mean(ϕ_i − θ) = c · (joint gradient)
   for ``inner_steps`` inner steps; called on a fresh network, task batch and step size, with one step
   (c = −α exactly) and with two (c is then no longer −2α, so it has to be measured: returning −α, or
   −k·α, after any gradient computation does not pass).
3. ``check_k_step_coefficients``: the two integer coefficients of the Taylor expansion for k = 3.
4. ``check_examples_seen``: a function of the episode sizes, called on sizes the student never saw.

Each ``check_*`` prints one line, "Correct: ..." or "Not yet: ...", and returns None.
"""
from __future__ import annotations

import inspect
import math

import torch

from lecture_utils.exercises import call_student, count_gradients, student_number, unavailable, verdict

__all__ = ["check_reptile_update", "check_one_step_coefficient", "check_k_step_coefficients",
           "check_examples_seen"]


# --- Exercise 1: the Reptile update by hand ------------------------------------------------------

def _reference_update(theta: dict, phis: list[dict], epsilon: float) -> dict:
    return {n: theta[n] + epsilon * torch.stack([phi[n] for phi in phis]).sub(theta[n]).mean(0)
            for n in theta}


def _update_problems():
    """(theta, phis, epsilon): parameters, numbers of tasks and step sizes of the check's own."""
    g = torch.Generator().manual_seed(5)
    problems = []
    for n_tasks, epsilon, shapes in ((4, 0.3, {"w": (3, 2), "b": (2,)}), (1, 0.1, {"weight": (4,)}),
                                     (3, 0.77, {"body.w": (2, 2), "head.w": (5, 2), "head.b": (5,)})):
        theta = {n: torch.randn(shape, generator=g) for n, shape in shapes.items()}
        phis = [{n: p + torch.randn(p.shape, generator=g) for n, p in theta.items()} for _ in range(n_tasks)]
        problems.append((theta, phis, epsilon))
    return problems


def _step_scale(got: dict, theta: dict, want: dict) -> float | None:
    """s when got = θ + s·(want − θ) for every name (a step in the right direction, of another size), else None."""
    step = torch.cat([(want[n] - theta[n]).flatten() for n in theta])
    taken = torch.cat([(got[n] - theta[n]).flatten() for n in theta])
    s = (taken @ step / (step @ step)).item()
    return s if torch.allclose(taken, s * step, atol=1e-6) else None


def check_reptile_update(reptile_update) -> None:
    """``reptile_update(theta, phis, epsilon)`` must return θ + ε·mean_i(ϕ_i − θ) as a dict."""
    if reptile_update is None:
        verdict(False, "", "define reptile_update (replace the None).")
        return
    if not callable(reptile_update):
        verdict(False, "", "reptile_update should be a function of (theta, phis, epsilon).")
        return
    for theta, phis, epsilon in _update_problems():
        want = _reference_update(theta, phis, epsilon)
        with unavailable("lecture_utils.exercises.nb05._reference_update", student=reptile_update):
            ran, got = call_student(reptile_update, {n: p.clone() for n, p in theta.items()},
                                    [{n: p.clone() for n, p in phi.items()} for phi in phis], epsilon,
                                    name="reptile_update")
        if not ran:
            return
        if got is None:
            verdict(False, "", "reptile_update returned None: fill in the TODO.")
            return
        if not isinstance(got, dict) or set(got) != set(theta):
            verdict(False, "", f"return a dict with the same names as theta ({', '.join(map(repr, theta))}).")
            return
        shapes_ok = all(torch.is_tensor(got[n]) and got[n].shape == want[n].shape for n in theta)
        if shapes_ok and all(torch.allclose(got[n], want[n], atol=1e-6) for n in theta):
            continue
        given = f"with {len(phis)} task{'s' if len(phis) > 1 else ''} and epsilon = {epsilon}"
        scale = _step_scale(got, theta, want) if shapes_ok else None
        if scale is not None and math.isclose(scale * epsilon, 1, rel_tol=1e-4):
            hint = "did you forget epsilon? θ + ε·mean(ϕ_i − θ)."
        elif scale is not None and scale > 0:
            hint = (f"the step is scaled by {scale * epsilon:.3g}, not by epsilon: use the epsilon passed in "
                    "(the check tries several).")
        else:
            hint = "average ϕ_i − θ over the tasks (the list phis), scale by epsilon, add to θ (one entry per name)."
        verdict(False, "", f"{given} the update is off: {hint}")
        return
    verdict(True, "theta moves a fraction epsilon of the way towards the mean of the adapted weights "
                  "(right on 3 problems, 1 to 4 tasks).", "")


# --- Exercise 2: one inner step is joint training ------------------------------------------------

def _coefficient(model, batch, inner_lr: float, inner_steps: int) -> float:
    """c = (d · g) / (g · g): d the Reptile direction, g the gradient of the mean support loss."""
    from lecture_utils.maml import MAML
    from lecture_utils.reptile import Reptile
    direction = Reptile("regression", inner_lr=inner_lr, inner_steps=inner_steps).direction(model, batch)
    loss, _ = MAML("regression", inner_steps=0).objective(model, batch._replace(x_qry=batch.x_spt, y_qry=batch.y_spt))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    d = torch.cat([v.flatten() for v in direction.values()])
    g = torch.cat([v.flatten() for v in grads])
    return (d @ g / (g @ g)).item()


def check_one_step_coefficient(one_step_coefficient) -> None:
    """``one_step_coefficient(model, batch, inner_lr, inner_steps=1)`` measures c with mean_i(ϕ_i − θ) =
    c · ∇θ(mean support loss) + (a part orthogonal to it), for ``inner_steps`` inner steps. Called on a
    fresh network, batch and step size: with one step, where c = −inner_lr exactly (and a hook on each
    parameter counts that a gradient was computed), and with two, where c depends on the network and
    the tasks, so it has to be measured."""
    from lecture_utils.models import SineMLP
    from lecture_utils.sinusoid import SinusoidTasks
    if not callable(one_step_coefficient):
        verdict(False, "", "one_step_coefficient should be a function of (model, batch, inner_lr, inner_steps=1).")
        return
    try:
        inspect.signature(one_step_coefficient).bind(None, None, None, inner_steps=2)
    except (TypeError, ValueError):
        verdict(False, "", "one_step_coefficient needs the parameters (model, batch, inner_lr, inner_steps=1): "
                           "the check also calls it with inner_steps=2.")
        return
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random state alone
        torch.manual_seed(18)
        model = SineMLP(20).double()
    batch = SinusoidTasks().sample(6, 5, 5, torch.Generator().manual_seed(18), dtype=torch.float64)
    inner_lr = 0.023
    with count_gradients(model.parameters()) as counter:
        value = student_number(one_step_coefficient, model, batch, inner_lr, name="one_step_coefficient",
                               none_hint="return the number c.")
    if value is None:
        return
    if math.isclose(value, -0.01, rel_tol=1e-3):
        verdict(False, "", "that is the notebook's −α = −0.01, but the check called your function with "
                           f"inner_lr = {inner_lr}: measure c from the arguments.")
        return
    if not math.isclose(value, -inner_lr, rel_tol=1e-6):
        if math.isclose(value, inner_lr, rel_tol=1e-3):
            verdict(False, "", "the sign is flipped: ϕ_i − θ points against the gradient, so c is negative; "
                               "c = (d · g) / (g · g) with d = mean(ϕ_i − θ).")
        else:
            verdict(False, "", f"with inner_lr = {inner_lr} and one step your function gave c = {value:.4g}; project "
                               "the Reptile direction on the gradient of the mean support loss: c = (d · g) / (g · g).")
        return
    if counter.calls == 0:
        verdict(False, "", "the number is right, but no gradient of the model was computed: measure it, with "
                           "Reptile(...).direction and torch.autograd.grad of the mean support loss.")
        return
    two_steps = _coefficient(model, batch, inner_lr, 2)
    value = student_number(one_step_coefficient, model, batch, inner_lr, inner_steps=2, name="one_step_coefficient",
                           none_hint="return the number c.")
    if value is None:
        return
    if not math.isclose(value, two_steps, rel_tol=1e-6):
        guess = " (that is −inner_steps · inner_lr, a guess, not a measurement)" if math.isclose(
            value, -2 * inner_lr, rel_tol=1e-6) else (" (the one-step value)" if math.isclose(value, -inner_lr, rel_tol=1e-6) else "")
        verdict(False, "", f"right for one step, but with inner_steps=2 your function gave c = {value:.4g}{guess}, "
                           f"and the projection is {two_steps:.4g}: pass inner_steps to Reptile and measure c as "
                           "(d · g) / (g · g).")
        return
    verdict(True, f"c = −inner_lr (here {inner_lr}) for one step: one SGD step moves ϕ_i by −α∇L_spt(θ), so "
                  f"Reptile with k = 1 follows the joint-training gradient. With two steps c = {two_steps:.4f}, not "
                  f"{-2 * inner_lr:g}: the second step is taken where the gradient has already changed.", "")


# --- Exercise 3: k inner steps in the Taylor expansion -------------------------------------------

def check_k_step_coefficients(avg_coef, inner_coef) -> None:
    """For k = 3 steps on mini-batches A, B, C: E[g_Reptile] = 3·AvgGrad − 3α·AvgGradInner."""
    if avg_coef is None or inner_coef is None:
        verdict(False, "", "set both coefficients (replace the None).")
        return
    if avg_coef != 3:
        verdict(False, "", f"the AvgGrad coefficient is not {avg_coef!r}: each of the k steps "
                           "contributes one gradient at θ.")
        return
    verdict(inner_coef == 3, "3·AvgGrad − 3α·AvgGradInner: one −α·H_j·g_i term per pair i < j.",
            f"the AvgGradInner coefficient is not {inner_coef!r}: count the pairs (i, j) with i < j "
            "among 3 steps (step j sees the change made by every earlier step i).")


# --- Exercise 4: how much data each update sees --------------------------------------------------

def check_examples_seen(images_per_update) -> None:
    """``images_per_update(n_way, k_shot, k_query) -> (reptile, maml)``: images of one task that enter
    Reptile's and MAML's meta-update; called on the character models' sizes and on new ones."""
    if not callable(images_per_update):
        verdict(False, "", "images_per_update should be a function of (n_way, k_shot, k_query).")
        return
    g = torch.Generator().manual_seed(7)
    drawn = tuple(int(v) for v in torch.randint(2, 30, (3,), generator=g))
    for n_way, k_shot, k_query in ((5, 1, 3), (20, 5, 15), (3, 2, 4), drawn):
        ran, got = call_student(images_per_update, n_way, k_shot, k_query, name="images_per_update")
        if not ran:
            return
        if isinstance(got, tuple) and len(got) == 2 and any(g is None for g in got):
            verdict(False, "", "reptile or maml is still None: fill in the TODOs.")
            return
        if not isinstance(got, tuple) or len(got) != 2:
            verdict(False, "", "return the two counts: return reptile, maml.")
            return
        reptile, maml = got
        want = (n_way * k_shot, n_way * k_shot + n_way * k_query)
        if (reptile, maml) == want:
            continue
        where = f"for {n_way}-way {k_shot}-shot with {k_query} queries per class"
        if reptile != want[0]:
            verdict(False, "", f"the Reptile count is off {where} (got {reptile!r}): Reptile's inner loop "
                               "runs on the support set only, N·K images.")
        else:
            verdict(False, "", f"the MAML count is off {where} (got {maml!r}): the meta-gradient needs the "
                               "support set and the query set, N·K + N·Q images.")
        return
    verdict(True, "Reptile updates from the N·K support images (5 for the character models); MAML also "
                  "scores the N·Q query images (20 in all).", "")

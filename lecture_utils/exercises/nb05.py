"""Self-checks for notebook 05 (notes: 「Appendix C: Reptile」).

1. ``check_reptile_update``: a function ``reptile_update(theta, phis, epsilon)``, called on random
   parameters the student never saw.
2. ``check_one_step_coefficient``: a function that measures c in mean(ϕ_i − θ) = c · (joint gradient)
   for one inner step; called on a fresh network, task batch and step size, with a hook on each
   parameter counting that a gradient was computed (returning −α without measuring is not enough).
3. ``check_k_step_coefficients``: the two integer coefficients of the Taylor expansion for k = 3.
4. ``check_examples_seen``: a function of the episode sizes, called on sizes the student never saw.

Each ``check_*`` prints one line, "Correct: ..." or "Not yet: ...", and returns None.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.exercises import call_student, count_gradients, student_number, verdict

__all__ = ["check_reptile_update", "check_one_step_coefficient", "check_k_step_coefficients",
           "check_examples_seen"]


# --- Exercise 1: the Reptile update by hand ------------------------------------------------------

def _reference_update(theta: dict, phis: list[dict], epsilon: float) -> dict:
    return {n: theta[n] + epsilon * torch.stack([phi[n] for phi in phis]).sub(theta[n]).mean(0)
            for n in theta}


def check_reptile_update(reptile_update) -> None:
    """``reptile_update(theta, phis, epsilon)`` must return θ + ε·mean_i(ϕ_i − θ) as a dict."""
    if reptile_update is None:
        verdict(False, "", "define reptile_update (replace the None).")
        return
    g = torch.Generator().manual_seed(5)
    theta = {"w": torch.randn(3, 2, generator=g), "b": torch.randn(2, generator=g)}
    phis = [{n: p + torch.randn(p.shape, generator=g) for n, p in theta.items()} for _ in range(4)]
    epsilon = 0.3
    ran, got = call_student(reptile_update, {n: p.clone() for n, p in theta.items()},
                            [dict(p) for p in phis], epsilon, name="reptile_update")
    if not ran:
        return
    if got is None:
        verdict(False, "", "reptile_update returned None: fill in the TODO.")
        return
    if not isinstance(got, dict) or set(got) != set(theta):
        verdict(False, "", "return a dict with the same names as theta ({'w': ..., 'b': ...}).")
        return
    want = _reference_update(theta, phis, epsilon)
    ok = all(torch.is_tensor(got[n]) and got[n].shape == want[n].shape
             and torch.allclose(got[n], want[n], atol=1e-6) for n in theta)
    moved = all(torch.is_tensor(got[n]) and got[n].shape == want[n].shape
                and torch.allclose(got[n], theta[n] + (want[n] - theta[n]) / epsilon, atol=1e-6) for n in theta)
    verdict(ok, "theta moves a fraction epsilon of the way towards the mean of the adapted weights.",
            "did you forget epsilon? θ + ε·mean(ϕ_i − θ)." if moved else
            "average ϕ_i − θ over the tasks, scale by epsilon, add to θ (one line per name).")


# --- Exercise 2: one inner step is joint training ------------------------------------------------

def check_one_step_coefficient(one_step_coefficient) -> None:
    """``one_step_coefficient(model, batch, inner_lr)`` measures c with mean_i(ϕ_i − θ) = c · ∇θ(mean
    support loss) for one inner step. Called on a fresh network, batch and step size; for one step
    c = −inner_lr exactly, so the check also requires that a gradient of the model was computed."""
    from lecture_utils.models import SineMLP
    from lecture_utils.sinusoid import SinusoidTasks
    if not callable(one_step_coefficient):
        verdict(False, "", "one_step_coefficient should be a function of (model, batch, inner_lr).")
        return
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random state alone
        torch.manual_seed(17)
        model = SineMLP(20)
    batch = SinusoidTasks().sample(6, 5, 5, torch.Generator().manual_seed(17))
    inner_lr = 0.023
    with count_gradients(model.parameters()) as counter:
        value = student_number(one_step_coefficient, model, batch, inner_lr, name="one_step_coefficient",
                               none_hint="return the number c.")
    if value is None:
        return
    if math.isclose(value, -0.01, rel_tol=1e-3):
        verdict(False, "", "that is the notebook's −α = −0.01, but the check called your function with "
                           f"inner_lr = {inner_lr}: measure c from the arguments.")
    elif not math.isclose(value, -inner_lr, rel_tol=1e-3):
        hint = "The sign is flipped: ϕ_i − θ points against the gradient. " if math.isclose(value, inner_lr, rel_tol=1e-3) else ""
        verdict(False, "", f"{hint}With inner_lr = {inner_lr} your function gave c = {value:.4g}; project the "
                           "Reptile direction on the joint gradient: c = (d · g) / (g · g).")
    elif counter.calls == 0:
        verdict(False, "", "the number is right, but no gradient of the model was computed: measure it, with "
                           "Reptile(...).direction and torch.autograd.grad of the mean support loss.")
    else:
        verdict(True, f"c = −inner_lr (here {inner_lr}): one SGD step moves ϕ_i by −α∇L_spt(θ), so "
                      "Reptile with k = 1 follows the joint-training gradient.", "")


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
    for n_way, k_shot, k_query in ((5, 1, 3), (20, 5, 15), (3, 2, 4)):
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

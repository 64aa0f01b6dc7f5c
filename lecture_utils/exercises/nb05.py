"""Self-checks for notebook 05 (Appendix C: Reptile).

Each ``check_*`` prints one line, "Correct: ..." or "Not yet: ...", and returns None.
Each ``worked_solution_*`` runs the folded solution of the notebook through its check, so the
stored notebook shows that the solution is accepted.
"""
from __future__ import annotations

import torch

from lecture_utils.exercises import call_student, check_close, check_equal, verdict

__all__ = ["check_reptile_update", "check_one_step_coefficient", "check_k_step_coefficients",
           "check_examples_seen", "worked_solution_1", "worked_solution_2", "worked_solution_3",
           "worked_solution_4"]


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


def worked_solution_1() -> None:
    def reptile_update(theta, phis, epsilon):
        return {n: theta[n] + epsilon * torch.stack([phi[n] - theta[n] for phi in phis]).mean(0)
                for n in theta}
    check_reptile_update(reptile_update)


# --- Exercise 2: one inner step is joint training ------------------------------------------------

def check_one_step_coefficient(c, inner_lr: float = 0.01) -> None:
    """With one inner step, mean(ϕ_i − θ) = c · (mean support gradient): c = −inner_lr."""
    if c is None:
        verdict(False, "", "set c (replace the None).")
        return
    if isinstance(c, torch.Tensor):
        c = c.item() if c.numel() == 1 else c
    check_close(c, -inner_lr, rtol=1e-3, what="the coefficient c")


def worked_solution_2(model, batch, inner_lr: float = 0.01) -> None:
    from lecture_utils.maml import MAML
    from lecture_utils.reptile import Reptile
    direction = Reptile("regression", inner_lr=inner_lr, inner_steps=1).direction(model, batch)
    support_only = batch._replace(x_qry=batch.x_spt, y_qry=batch.y_spt)  # loss on the support set
    loss, _ = MAML("regression", inner_steps=0).objective(model, support_only)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    d = torch.cat([v.flatten() for v in direction.values()])
    g = torch.cat([v.flatten() for v in grads])
    c = (d @ g / (g @ g)).item()
    check_one_step_coefficient(c, inner_lr)


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


def worked_solution_3() -> None:
    k = 3
    avg_coef = k                      # one gradient per step
    inner_coef = k * (k - 1) // 2     # one H_j g_i term per earlier step i < j
    check_k_step_coefficients(avg_coef, inner_coef)


# --- Exercise 4: how much data each update sees --------------------------------------------------

def check_examples_seen(reptile: int | None, maml: int | None) -> None:
    """Images of one chars5 task (5-way 1-shot, 3 queries per class) that enter the meta-update."""
    if reptile is None or maml is None:
        verdict(False, "", "set both counts (replace the None).")
        return
    if reptile != 5:
        check_equal(reptile, 5, what="the Reptile count")
        print("  Hint: Reptile's inner loop runs on the support set only: N·K images.")
        return
    verdict(maml == 20, "Reptile updates from the 5 support images; MAML also scores 15 query images.",
            f"the MAML count is not {maml!r}: the meta-gradient needs the support set and the query set "
            "(N·K + N·Q images).")


def worked_solution_4() -> None:
    n_way, k_shot, k_query = 5, 1, 3
    reptile = n_way * k_shot
    maml = n_way * k_shot + n_way * k_query
    check_examples_seen(reptile, maml)

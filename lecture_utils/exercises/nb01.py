"""Self-checks for notebook 01, the MAML algorithm (알고리즘 오버뷰).

Exercises 1 and 2 use a model with one weight, f(x; w) = w * x, so every number can be worked
out by hand: support set x = [1, 2], y = [2, 4]; query set x = [3], y = [6]; w = 0; alpha = 0.1.

- inner step: dL_spt/dw = mean(2 x (w x - y)) = -10, so phi = 0 - 0.1 * (-10) = 1.0
- meta-gradient: dL_qry/dphi = 2 * 3 * (3 * 1 - 6) = -18 and dphi/dw = 1 - alpha * mean(2 x^2) = 0.5,
  so dL_qry/dw = -9 (and -18 if the inner gradient's graph is dropped: first-order MAML).

The ``solution_*`` functions hold the worked solutions folded in the notebook; the notebook runs
them through the same checks, so its stored output shows that the solutions pass.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.exercises import check_close, verdict

PHI = 1.0
META_GRADIENT = -9.0
FIRST_ORDER_GRADIENT = -18.0


def _as_float(value, what: str) -> float | None:
    """A Python float from a number or a one-element tensor; prints a hint and returns None otherwise."""
    if value is None:
        verdict(False, "", f"{what} is still None: fill in the TODO above.")
        return None
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]  # torch.autograd.grad returns a tuple
    if hasattr(value, "numel") and value.numel() != 1:
        verdict(False, "", f"{what} should be one number (a tensor with one element), got shape {tuple(value.shape)}.")
        return None
    try:
        number = float(value.detach() if hasattr(value, "detach") else value)
    except (TypeError, ValueError):
        verdict(False, "", f"{what} should be a number or a one-element tensor, not {type(value).__name__}.")
        return None
    if not math.isfinite(number):
        verdict(False, "", f"{what} is {number}: check the signs and the learning rate.")
        return None
    return number


def check_inner_step(phi) -> None:
    """Exercise 1: phi = w - alpha * dL_spt/dw for the one-weight model."""
    value = _as_float(phi, "phi")
    if value is None:
        return
    if math.isclose(value, -PHI, rel_tol=1e-5):
        verdict(False, "", "the sign is flipped: the inner step goes against the gradient, phi = w - alpha * grad.")
    elif math.isclose(value, 10.0, rel_tol=1e-5) or math.isclose(value, -10.0, rel_tol=1e-5):
        verdict(False, "", "that is the support gradient itself; phi = w - alpha * grad.")
    else:
        check_close(value, PHI, rtol=1e-5, what="phi after one inner step")


def check_meta_gradient(meta_grad) -> None:
    """Exercise 2: d L_qry(phi(w)) / dw, through the inner step."""
    value = _as_float(meta_grad, "the meta-gradient")
    if value is None:
        return
    if math.isclose(value, FIRST_ORDER_GRADIENT, rel_tol=1e-5):
        verdict(False, "", "-18 is dL_qry/dphi, the first-order gradient: the inner gradient's graph was "
                           "dropped. Compute it with create_graph=True so that dphi/dw = 1 - alpha * 5 = 0.5 counts.")
    else:
        check_close(value, META_GRADIENT, rtol=1e-5, what="the meta-gradient dL_qry/dw")


def check_same_parameters(model_a, model_b) -> None:
    """Exercise 3: Pseudo Code 2 with plain SGD ends where Pseudo Code 1 ends."""
    if model_a is None or model_b is None:
        verdict(False, "", "model_a and model_b must both be models: fill in the TODO above.")
        return
    if model_a is model_b:
        verdict(False, "", "model_a and model_b are the same object: train a second model from the same seed.")
        return
    a, b = dict(model_a.named_parameters()), dict(model_b.named_parameters())
    if a.keys() != b.keys():
        verdict(False, "", "the two models have different parameters: use the same architecture.")
        return
    gap = max((a[n].detach().cpu() - b[n].detach().cpu()).abs().max().item() for n in a)
    scale = max(a[n].detach().abs().max().item() for n in a)
    verdict(gap <= 1e-5 * max(scale, 1.0),
            "the parameters agree (to 1e-5 of the largest entry): Pseudo Code 2 with SGD(lr=beta) "
            "is Pseudo Code 1.",
            f"the parameters differ by up to {gap:.2g}. Which optimiser performs theta = theta - beta * grad "
            "exactly? Pass it as optimizer=..., with the same alpha, beta and tasks.")


# --- the worked solutions (the notebook folds the same lines) -------------------------------------

def solution_inner_step():
    w = torch.tensor(0.0, requires_grad=True)
    x_spt1, y_spt1 = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
    alpha = 0.1
    spt_loss = ((w * x_spt1 - y_spt1) ** 2).mean()
    (grad_w,) = torch.autograd.grad(spt_loss, w, create_graph=True)
    phi1 = w - alpha * grad_w
    return phi1


def solution_meta_gradient():
    w = torch.tensor(0.0, requires_grad=True)
    x_spt1, y_spt1 = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
    x_qry1, y_qry1 = torch.tensor([3.0]), torch.tensor([6.0])
    alpha = 0.1
    spt_loss = ((w * x_spt1 - y_spt1) ** 2).mean()
    (grad_w,) = torch.autograd.grad(spt_loss, w, create_graph=True)  # keep the graph of the gradient
    phi1 = w - alpha * grad_w
    qry_loss = ((phi1 * x_qry1 - y_qry1) ** 2).mean()
    (meta_grad1,) = torch.autograd.grad(qry_loss, w)
    return meta_grad1


def solution_same_parameters(pseudo_code_2, model_b, tasks, alpha, beta):
    pseudo_code_2(model_b, tasks, alpha=alpha, beta=beta, optimizer=torch.optim.SGD)
    return model_b

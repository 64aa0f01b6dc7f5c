"""Self-checks for notebook 01, the MAML algorithm (notes: 「알고리즘 오버뷰」).

Exercises 1 and 2 use a model with one weight, f(x; w) = w * x, so every number can be worked
out by hand: support set x = [1, 2], y = [2, 4]; query set x = [3], y = [6]; w = 0; alpha = 0.1.

- inner step: dL_spt/dw = mean(2 x (w x - y)) = -10, so phi = 0 - 0.1 * (-10) = 1.0, and
  dphi/dw = 1 - alpha * mean(2 x^2) = 0.5 when the graph of the inner gradient is kept.
- meta-gradient: dL_qry/dphi = 2 * 3 * (3 * 1 - 6) = -18, so dL_qry/dw = -18 * 0.5 = -9
  (and -18 if the inner gradient's graph is dropped: first-order MAML).

The checks verify the computation, not only the number: exercise 1's phi must carry a graph back
to w with dphi/dw = 1 - alpha * mean(2 x^2); exercise 2's function is called on random one-weight
problems the student never saw.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.exercises import as_number, check_close, student_number, verdict


def _closed_form(w, x_spt, y_spt, x_qry, y_qry, alpha):
    """phi, dphi/dw, the exact and the first-order meta-gradient of the one-weight model."""
    grad_spt = (2 * x_spt * (w * x_spt - y_spt)).mean()
    phi = w - alpha * grad_spt
    dphi_dw = 1 - alpha * (2 * x_spt ** 2).mean()
    first_order = (2 * x_qry * (phi * x_qry - y_qry)).mean()
    return phi, dphi_dw, first_order * dphi_dw, first_order


def check_inner_step(phi, w, x_spt, y_spt, alpha) -> None:
    """Exercise 1: phi = w - alpha * dL_spt/dw, computed with autograd from ``w`` with the graph kept."""
    value = as_number(phi, "phi1")
    if value is None:
        return
    if not isinstance(w, torch.Tensor) or not w.requires_grad:
        verdict(False, "", "pass the weight w of the exercise: a tensor with requires_grad=True.")
        return
    w0 = float(w.detach())
    want, want_slope, _, _ = (float(v) for v in _closed_form(w0, x_spt, y_spt, 0.0, 0.0, alpha))
    if math.isclose(value, 2 * w0 - want, rel_tol=1e-5, abs_tol=1e-6):
        verdict(False, "", "the sign is flipped: the inner step goes against the gradient, phi = w - alpha * grad.")
        return
    if not math.isclose(value, want, rel_tol=1e-5, abs_tol=1e-6):
        check_close(value, want, rtol=1e-5, what="phi1 after one inner step")
        return
    if not isinstance(phi, torch.Tensor) or phi.grad_fn is None:
        verdict(False, "", "phi1 has the right value but no graph (no grad_fn): compute it from w with "
                           "torch.autograd.grad(..., create_graph=True), so that exercise 2 can differentiate it.")
        return
    try:
        (slope,) = torch.autograd.grad(phi, w, retain_graph=True, allow_unused=True)
    except RuntimeError as err:
        verdict(False, "", f"phi1 cannot be differentiated with respect to w ({err}).")
        return
    if slope is None or not math.isclose(float(slope), want_slope, rel_tol=1e-5, abs_tol=1e-6):
        got = 0.0 if slope is None else float(slope)
        verdict(False, "", f"phi1 = {value:g}, but dphi1/dw = {got:g} instead of 1 - alpha * mean(2 x^2) = "
                           f"{want_slope:g}: phi1 must come from the inner gradient, taken with create_graph=True.")
        return
    verdict(True, f"phi1 = {want:g}, with a graph back to w (dphi1/dw = {want_slope:g}).", "")


def _random_problems():
    """One-weight problems the student never saw (float64), the exercise's own one first."""
    g = torch.Generator().manual_seed(101)
    problems = [(0.0, [1.0, 2.0], [2.0, 4.0], [3.0], [6.0], 0.1)]
    for _ in range(3):
        problems.append((torch.randn(1, generator=g).item(), torch.randn(4, generator=g).tolist(),
                         torch.randn(4, generator=g).tolist(), torch.randn(2, generator=g).tolist(),
                         torch.randn(2, generator=g).tolist(), 0.05 + 0.2 * torch.rand(1, generator=g).item()))
    return problems


def check_meta_gradient(meta_gradient) -> None:
    """Exercise 2: ``meta_gradient(w, x_spt, y_spt, x_qry, y_qry, alpha)`` -> dL_qry(phi(w))/dw,
    checked on the exercise's problem and on random ones."""
    if not callable(meta_gradient):
        verdict(False, "", "meta_gradient should be a function of (w, x_spt, y_spt, x_qry, y_qry, alpha).")
        return
    for i, (w0, *data, alpha) in enumerate(_random_problems()):
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        x_spt, y_spt, x_qry, y_qry = (torch.tensor(d, dtype=torch.float64) for d in data)
        value = student_number(meta_gradient, w, x_spt, y_spt, x_qry, y_qry, alpha, name="meta_gradient",
                               none_hint="return the gradient (fill in the TODO).")
        if value is None:
            return
        _, _, exact, first = (float(v) for v in _closed_form(w0, x_spt, y_spt, x_qry, y_qry, alpha))
        if math.isclose(value, exact, rel_tol=1e-5, abs_tol=1e-7):
            continue
        if math.isclose(value, first, rel_tol=1e-5, abs_tol=1e-7):
            verdict(False, "", "that is dL_qry/dphi, the first-order gradient: the inner gradient's graph was "
                               "dropped. Take it with create_graph=True so that dphi/dw = 1 - alpha * mean(2 x^2) counts.")
        elif i == 0:
            check_close(value, exact, rtol=1e-5, what="the meta-gradient dL_qry/dw")
        else:
            verdict(False, "", f"right on the exercise's numbers, but off on a new problem (got {value:.4g}, "
                               f"expected {exact:.4g}): compute with the arguments, do not type the answer.")
        return
    verdict(True, "the meta-gradient includes dphi/dw = 1 - alpha * mean(2 x^2): -9 on the exercise's "
                  "numbers, and right on 3 random problems.", "")


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

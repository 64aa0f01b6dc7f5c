"""Self-checks for notebook 01, the MAML algorithm (notes: 「알고리즘 오버뷰」).

Exercises 1 and 2 use a model with one weight, f(x; w) = w * x, so every number can be worked
out by hand: support set x = [1, 2], y = [2, 4]; query set x = [3], y = [6]; w = 0; alpha = 0.1.

- inner step: dL_spt/dw = mean(2 x (w x - y)) = -10, so phi = 0 - 0.1 * (-10) = 1.0, and
  dphi/dw = 1 - alpha * mean(2 x^2) = 0.5 when the graph of the inner gradient is kept.
- meta-gradient: dL_qry/dphi = 2 * 3 * (3 * 1 - 6) = -18, so dL_qry/dw = -18 * 0.5 = -9
  (and -18 if the inner gradient's graph is dropped: first-order MAML).

The checks verify the computation, not only the number: both exercises ask for a function, which
is called on the exercise's numbers and on random one-weight problems the student never saw (so a
number, or a formula in w, typed from the notebook fails); a hook on w counts that autograd computed
a gradient; exercise 1's phi must carry a graph back to w with dphi/dw = 1 - alpha * mean(2 x^2).
While the student's function runs, the package's inner loop and meta-loss are unavailable.
Exercise 3 checks that ``model_b`` was trained by Pseudo Code 2 (its ``backward()`` leaves the last
meta-gradient in each ``.grad``), not copied from ``model_a``.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.exercises import (MAML_FUNCTIONS, as_number, call_student, check_close, count_gradients,
                                     student_number, unavailable, verdict)


def _closed_form(w, x_spt, y_spt, x_qry, y_qry, alpha):
    """phi, dphi/dw, the exact and the first-order meta-gradient of the one-weight model."""
    grad_spt = (2 * x_spt * (w * x_spt - y_spt)).mean()
    phi = w - alpha * grad_spt
    dphi_dw = 1 - alpha * (2 * x_spt ** 2).mean()
    first_order = (2 * x_qry * (phi * x_qry - y_qry)).mean()
    return phi, dphi_dw, first_order * dphi_dw, first_order


def _random_problems():
    """One-weight problems the student never saw (float64), the exercise's own one first."""
    g = torch.Generator().manual_seed(101)
    problems = [(0.0, [1.0, 2.0], [2.0, 4.0], [3.0], [6.0], 0.1)]
    for _ in range(3):
        problems.append((torch.randn(1, generator=g).item(), torch.randn(4, generator=g).tolist(),
                         torch.randn(4, generator=g).tolist(), torch.randn(2, generator=g).tolist(),
                         torch.randn(2, generator=g).tolist(), 0.05 + 0.2 * torch.rand(1, generator=g).item()))
    return problems


def check_inner_step(inner_step) -> None:
    """Exercise 1: ``inner_step(w, x_spt, y_spt, alpha)`` -> phi = w - alpha * dL_spt/dw, computed
    with autograd from ``w`` with the graph of the gradient kept; checked on the exercise's
    numbers and on random problems."""
    if not callable(inner_step):
        verdict(False, "", "inner_step should be a function of (w, x_spt, y_spt, alpha): fill in the TODO.")
        return
    for i, (w0, x, y, _, _, alpha) in enumerate(_random_problems()):
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        x_spt, y_spt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
        with count_gradients([w]) as counter, unavailable(*MAML_FUNCTIONS, student=inner_step):
            ran, phi_tensor = call_student(inner_step, w, x_spt, y_spt, alpha, name="inner_step")
        if not ran:
            return
        if phi_tensor is None:
            verdict(False, "", "inner_step returned None: return phi (fill in the TODO).")
            return
        phi = as_number(phi_tensor, "the value inner_step returned")
        if phi is None:
            return
        want, want_slope, _, _ = (float(v) for v in _closed_form(w0, x_spt, y_spt, 0.0, 0.0, alpha))
        if not math.isclose(phi, want, rel_tol=1e-9, abs_tol=1e-12):
            if math.isclose(phi, 2 * w0 - want, rel_tol=1e-9, abs_tol=1e-12):
                verdict(False, "", "the sign is flipped: the inner step goes against the gradient, phi = w - alpha * grad.")
            elif i == 0:
                check_close(phi, want, rtol=1e-6, what="phi after one inner step")
            else:
                verdict(False, "", f"right on the exercise's numbers, but off on a new problem (got {phi:.4g}, "
                                   f"expected {want:.4g}): compute phi from the arguments, do not type it.")
            return
        if counter.calls == 0:
            verdict(False, "", "phi has the right value, but autograd computed no gradient with respect to w: "
                               "take dL_spt/dw with torch.autograd.grad(spt_loss, w, create_graph=True).")
            return
        if not isinstance(phi_tensor, torch.Tensor) or phi_tensor.grad_fn is None:
            verdict(False, "", "phi has the right value but no graph (no grad_fn): compute it from w with "
                               "torch.autograd.grad(..., create_graph=True), so that exercise 2 can differentiate it.")
            return
        try:
            (slope,) = torch.autograd.grad(phi_tensor, w, allow_unused=True)
        except RuntimeError as err:
            verdict(False, "", f"phi cannot be differentiated with respect to w ({err}).")
            return
        if slope is None or not math.isclose(float(slope), want_slope, rel_tol=1e-9, abs_tol=1e-12):
            got = 0.0 if slope is None else float(slope)
            verdict(False, "", f"phi = {phi:.4g}, but dphi/dw = {got:.4g} instead of 1 - alpha * mean(2 x^2) = "
                               f"{want_slope:.4g}: phi must come from the inner gradient, taken with create_graph=True.")
            return
    verdict(True, "phi = 1 on the exercise's numbers, with a graph back to w (dphi/dw = 0.5), and right on "
                  "3 random problems.", "")


def check_meta_gradient(meta_gradient) -> None:
    """Exercise 2: ``meta_gradient(w, x_spt, y_spt, x_qry, y_qry, alpha)`` -> dL_qry(phi(w))/dw, with
    autograd, checked on the exercise's problem and on random ones."""
    if not callable(meta_gradient):
        verdict(False, "", "meta_gradient should be a function of (w, x_spt, y_spt, x_qry, y_qry, alpha).")
        return
    for i, (w0, *data, alpha) in enumerate(_random_problems()):
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        x_spt, y_spt, x_qry, y_qry = (torch.tensor(d, dtype=torch.float64) for d in data)
        with count_gradients([w]) as counter, unavailable(*MAML_FUNCTIONS, student=meta_gradient):
            value = student_number(meta_gradient, w, x_spt, y_spt, x_qry, y_qry, alpha, name="meta_gradient",
                                   none_hint="return the gradient (fill in the TODO).")
        if value is None:
            return
        _, _, exact, first = (float(v) for v in _closed_form(w0, x_spt, y_spt, x_qry, y_qry, alpha))
        if math.isclose(value, exact, rel_tol=1e-9, abs_tol=1e-12):
            if counter.calls == 0:
                verdict(False, "", "the number is right, but autograd computed no gradient with respect to w: "
                                   "differentiate the query loss with torch.autograd.grad, as the exercise asks.")
                return
            continue
        if math.isclose(value, first, rel_tol=1e-9, abs_tol=1e-12):
            verdict(False, "", "that is dL_qry/dphi, the first-order gradient: the inner gradient's graph was "
                               "dropped. Take it with create_graph=True so that dphi/dw = 1 - alpha * mean(2 x^2) counts.")
        elif i == 0:
            check_close(value, exact, rtol=1e-6, what="the meta-gradient dL_qry/dw")
        else:
            verdict(False, "", f"right on the exercise's numbers, but off on a new problem (got {value:.4g}, "
                               f"expected {exact:.4g}): compute with the arguments (alpha too, and the mean over "
                               "the query points), do not type the answer.")
        return
    verdict(True, "the meta-gradient includes dphi/dw = 1 - alpha * mean(2 x^2): -9 on the exercise's "
                  "numbers, and right on 3 random problems.", "")


def check_same_parameters(model_a, model_b) -> None:
    """Exercise 3: Pseudo Code 2 with plain SGD ends where Pseudo Code 1 ends.

    Pseudo Code 2 ends with ``backward()`` and ``step()``, which leave the last meta-gradient in each
    parameter's ``.grad``; a copy of ``model_a`` (``load_state_dict``, ``copy.deepcopy``) has none."""
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
    if any(a[n] is b[n] for n in a):
        verdict(False, "", "model_b shares its parameters with model_a: train a second model from the same seed.")
        return
    gap = max((a[n].detach().cpu() - b[n].detach().cpu()).abs().max().item() for n in a)
    scale = max(a[n].detach().abs().max().item() for n in a)
    if gap > 1e-5 * max(scale, 1.0):
        verdict(False, "", f"the parameters differ by up to {gap:.2g}. Which optimiser performs theta = theta - "
                           "beta * grad exactly? Pass it as optimizer=..., with the same alpha, beta and tasks.")
        return
    untrained = [n for n, p in b.items() if p.grad is None or not p.grad.abs().sum().item() > 0]
    if untrained:
        verdict(False, "", "the parameters agree, but model_b was not trained by pseudo_code_2: its backward() "
                           f"would leave a meta-gradient in each .grad, and {untrained[0]}.grad is empty. Copying "
                           "model_a's weights proves nothing: run pseudo_code_2 on the fresh model_b.")
        return
    verdict(True, "the parameters agree (to 1e-5 of the largest entry): Pseudo Code 2 with SGD(lr=beta) "
                  "is Pseudo Code 1.", "")

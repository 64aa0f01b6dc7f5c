"""Self-checks for ``notebooks/_template.ipynb``: a worked example of the exercise convention.

Copy this file to ``nbNN.py`` when you start notebook NN. The exercise asks for a function, so
the check can call it on inputs the student never saw, and it counts with a hook that the
gradient came from autograd, as the exercise asks, rather than from a typed number.
"""
from __future__ import annotations

import math

import torch

from lecture_utils.exercises import count_gradients, student_number, verdict


def check_mse_grad(mse_grad) -> None:
    """Exercise 1: ``mse_grad(w, x, y)`` -> d/dw mean((w x - y)^2), computed with ``torch.autograd.grad``."""
    if not callable(mse_grad):
        verdict(False, "", "mse_grad should be a function of (w, x, y): fill in the TODO.")
        return
    g = torch.Generator().manual_seed(7)
    problems = [(0.0, [1.0, 2.0], [2.0, 4.0])]                      # the exercise's own numbers first
    problems += [(torch.randn(1, generator=g).item(), torch.randn(5, generator=g).tolist(),
                  torch.randn(5, generator=g).tolist()) for _ in range(2)]
    for w0, xs, ys in problems:
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
        with count_gradients([w]) as counter:
            value = student_number(mse_grad, w, x, y, name="mse_grad", none_hint="return the gradient.")
        if value is None:
            return
        want = float((2 * x * (w0 * x - y)).mean())
        if not math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9):
            if math.isclose(value, -want, rel_tol=1e-6):
                verdict(False, "", "the sign is flipped: the derivative of (w x - y)^2 is 2 x (w x - y).")
            else:
                verdict(False, "", f"got {value:.4g} where d/dw mean((w x - y)^2) is {want:.4g}: "
                                   "differentiate the loss of the arguments, do not type the answer.")
            return
        if counter.calls == 0:
            verdict(False, "", "the number is right, but autograd did not compute it: "
                               "use torch.autograd.grad(loss, w).")
            return
    verdict(True, "mse_grad(0, [1, 2], [2, 4]) = -10, and autograd gets it right on 2 random problems.", "")

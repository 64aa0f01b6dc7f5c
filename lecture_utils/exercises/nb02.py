"""Self-checks for notebook 02, Appendix A: create_graph=True (PyTorch).

1. ``check_second_derivative``: d^2/dx^2 of x^4 at x = 2 is 12 * 2^2 = 48 (the first derivative is 32).
2. ``check_backward_twice``: two ``backward()`` calls through one graph (``retain_graph=True``)
   leave ``x.grad`` = 12 + 12 = 24 for y = x^3 at x = 2.
3. ``check_meta_gradient_function``: a student's MAML meta-gradient (one inner step) against the
   exact one, computed here with ``torch.func`` (which always keeps the graph of the inner gradient),
   and against the first-order one, to name the silent bug when it is still there.

The ``solution_*`` functions hold the worked solutions folded in the notebook; the notebook runs
them through the same checks, so its stored output shows that the solutions pass.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from lecture_utils.exercises import call_student, check_close, verdict
from lecture_utils.models import SineMLP, forward_with


def check_second_derivative(second) -> None:
    """Exercise 1: d^2/dx^2 x^4 at x = 2."""
    if second is None:
        verdict(False, "", "second is still None: fill in the TODO above.")
        return
    if isinstance(second, (tuple, list)) and len(second) == 1:
        second = second[0]
    try:
        value = float(second.detach() if hasattr(second, "detach") else second)
    except (TypeError, ValueError):
        verdict(False, "", f"second should be a number or a one-element tensor, not {type(second).__name__}.")
        return
    if math.isclose(value, 32.0):
        verdict(False, "", "32 = 4 x^3 is the first derivative; differentiate it once more "
                           "(the first grad needs create_graph=True).")
    else:
        check_close(value, 48.0, rtol=1e-6, what="the second derivative 12 x^2 at x = 2")


def check_backward_twice(x) -> None:
    """Exercise 2: two backward passes through the graph of y = x^3 at x = 2 leave x.grad = 12 + 12."""
    if x is None or not hasattr(x, "grad"):
        verdict(False, "", "pass the tensor x of the exercise.")
        return
    if x.grad is None:
        verdict(False, "", "x.grad is None: no backward pass has reached x yet; call y.backward(...) twice.")
        return
    value = float(x.grad.detach())
    if math.isclose(value, 12.0):
        verdict(False, "", "x.grad is 12: only one backward pass reached x. The first call must keep the graph "
                           "for the second (which argument?).")
    else:
        verdict(math.isclose(value, 24.0),
                "two backward passes through one graph, and .grad accumulated 12 + 12 = 24.",
                f"x.grad is {value:g}, expected 24 = 12 + 12 (start from a fresh x and y).")


def _maml_problem():
    """A small float64 regression task and model, the same on every call."""
    with torch.random.fork_rng(devices=[]):  # leave the notebook's random state alone
        torch.manual_seed(3)
        model = SineMLP(hidden=6).double()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 8, 1, generator=g, dtype=torch.float64) * 10 - 5
    y = 2.0 * torch.sin(x - 0.5)
    return model, x[0], y[0], x[1], y[1], 0.1


def _reference_meta_gradients(model, x_spt, y_spt, x_qry, y_qry, alpha):
    theta = {n: p.detach() for n, p in model.named_parameters()}

    def meta_loss(params, first_order):
        g = grad(lambda p: F.mse_loss(functional_call(model, p, (x_spt,)), y_spt))(params)
        if first_order:
            g = {n: t.detach() for n, t in g.items()}
        phi = {n: params[n] - alpha * g[n] for n in params}
        return F.mse_loss(functional_call(model, phi, (x_qry,)), y_qry)

    exact = grad(lambda p: meta_loss(p, False))(theta)
    first = grad(lambda p: meta_loss(p, True))(theta)
    return [exact[n] for n in theta], [first[n] for n in theta]


def check_meta_gradient_function(meta_gradient) -> None:
    """Exercise 3: ``meta_gradient(model, x_spt, y_spt, x_qry, y_qry, alpha)`` -> one tensor per parameter."""
    if not callable(meta_gradient):
        verdict(False, "", "meta_gradient should be a function.")
        return
    model, x_spt, y_spt, x_qry, y_qry, alpha = _maml_problem()
    exact, first = _reference_meta_gradients(model, x_spt, y_spt, x_qry, y_qry, alpha)
    ran, got = call_student(meta_gradient, model, x_spt, y_spt, x_qry, y_qry, alpha, name="meta_gradient")
    if not ran:
        return
    if got is None or len(got) != len(exact) or any(g is None for g in got):
        verdict(False, "", "meta_gradient should return one gradient tensor per parameter of the model.")
        return
    got = [g.detach() for g in got]
    if all(torch.allclose(g, e, rtol=1e-7, atol=1e-10) for g, e in zip(got, exact)):
        verdict(True, "the meta-gradient includes the (I - alpha H) term: it equals the exact one.", "")
    elif all(torch.allclose(g, f, rtol=1e-7, atol=1e-10) for g, f in zip(got, first)):
        verdict(False, "", "this is still the first-order meta-gradient (dphi/dtheta treated as I): the inner "
                           "gradient is computed without a graph. Which argument of autograd.grad keeps it?")
    else:
        verdict(False, "", "the meta-gradient matches neither the exact nor the first-order one: "
                           "phi = theta - alpha * grad(support loss), then differentiate the query loss at phi "
                           "with respect to theta.")


# --- the worked solutions (the notebook folds the same lines) -------------------------------------

def solution_second_derivative():
    x = torch.tensor(2.0, requires_grad=True)
    (first,) = torch.autograd.grad(x ** 4, x, create_graph=True)   # 4 x^3, with a graph
    (second,) = torch.autograd.grad(first, x)                      # 12 x^2
    return second


def solution_backward_twice():
    x = torch.tensor(2.0, requires_grad=True)
    y = x ** 3
    y.backward(retain_graph=True)   # keep the saved tensors for a second pass
    y.backward()
    return x


def solution_meta_gradient(model, x_spt, y_spt, x_qry, y_qry, alpha):
    theta = list(model.parameters())
    spt_loss = F.mse_loss(model(x_spt), y_spt)
    grads = torch.autograd.grad(spt_loss, theta, create_graph=True)   # the fix
    phi = {n: p - alpha * g for (n, p), g in zip(model.named_parameters(), grads)}
    qry_loss = F.mse_loss(forward_with(model, phi, x_qry), y_qry)
    return torch.autograd.grad(qry_loss, theta)

"""Self-checks for notebook 02 (notes: 「Appendix A: create_graph=True (PyTorch)」).

1. ``check_second_derivative``: a function ``second_derivative(f, x)`` built from two calls of
   ``torch.autograd.grad``; called here on functions and points the student never saw (for x^4 at
   x = 2 it gives 12 * 2^2 = 48; the first derivative is 32), with a hook on x that counts the two
   gradient computations. Autograd is exact to rounding, so a finite difference does not pass.
2. ``check_backward_twice``: two ``backward()`` calls through one graph (``retain_graph=True``)
   leave ``x.grad`` = 12 + 12 = 24 for y = x^3 at x = 2. Hooks (``watch_backward``) count the passes
   through the graph node of y and the times backward stored into x.grad, so one pass with a
   doubled gradient, a second graph, or ``torch.autograd.grad`` with x.grad set by hand does not count.
3. ``check_meta_gradient_function``: a student's MAML meta-gradient (one inner step) against the
   exact one, computed here with ``torch.func`` (which always keeps the graph of the inner gradient),
   and against the first-order one, to name the silent bug when it is still there; on two networks,
   tasks and step sizes, while the package's inner loop and meta-loss are unavailable.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from lecture_utils.exercises import (MAML_FUNCTIONS, as_number, call_student, check_close, count_gradients,
                                     unavailable, verdict)
from lecture_utils.models import SineMLP

# (function, its second derivative, the point): the exercise's x^4 at 2 first, then new ones.
_SECOND_DERIVATIVES = [
    (lambda x: x ** 4, lambda x: 12 * x ** 2, 2.0),
    (lambda x: x ** 3 - 2 * x, lambda x: 6 * x, -1.3),
    (lambda x: torch.sin(x) * x, lambda x: 2 * torch.cos(x) - x * torch.sin(x), 0.7),
    (lambda x: torch.exp(0.5 * x), lambda x: 0.25 * torch.exp(0.5 * x), 1.1),
]


def check_second_derivative(second_derivative) -> None:
    """Exercise 1: ``second_derivative(f, x)`` -> d^2 f / dx^2 at ``x`` (a scalar tensor that requires grad)."""
    if not callable(second_derivative):
        verdict(False, "", "second_derivative should be a function of (f, x): fill in the TODO.")
        return
    for i, (f, f2, x0) in enumerate(_SECOND_DERIVATIVES):
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        try:
            with count_gradients([x]) as counter:
                got = second_derivative(f, x)
        except RuntimeError as err:
            if "does not require grad" in str(err) or "does not have a grad_fn" in str(err):
                verdict(False, "", "the first derivative has no graph, so it cannot be differentiated again: "
                                   "the first torch.autograd.grad needs create_graph=True.")
            else:
                verdict(False, "", f"second_derivative raised RuntimeError: {str(err).splitlines()[0]}")
            return
        except Exception as err:  # a student's code may fail in any way
            verdict(False, "", f"second_derivative raised {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            return
        if got is None:
            verdict(False, "", "second_derivative returned None: return the second derivative.")
            return
        value = as_number(got, "the value second_derivative returned")
        if value is None:
            return
        want = float(f2(x.detach()))
        if math.isclose(value, want, rel_tol=1e-12, abs_tol=1e-12):
            if counter.calls < 2:
                verdict(False, "", f"the number is right, but autograd computed {counter.calls} gradient(s) with "
                                   "respect to x, not two: differentiate f(x) with torch.autograd.grad (create_graph="
                                   "True), then differentiate that first derivative with a second call.")
                return
            continue
        if math.isclose(value, want, rel_tol=1e-5):
            verdict(False, "", f"close ({value:.10g} against {want:.10g}), but not exact: a finite difference "
                               "approximates the derivative; differentiating the graph of the first derivative "
                               "(two torch.autograd.grad calls) is exact to rounding.")
        elif i == 0 and math.isclose(value, 32.0):
            verdict(False, "", "32 = 4 x^3 is the first derivative; differentiate it once more "
                               "(the first grad needs create_graph=True).")
        elif i == 0:
            check_close(value, want, rtol=1e-6, what="the second derivative of x ** 4 at x = 2")
        else:
            verdict(False, "", f"right for x ** 4 at 2, but off for another function (got {value:.4g}, expected "
                               f"{want:.4g}): differentiate f at x, do not type the answer.")
        return
    verdict(True, "x ** 4 at x = 2 gives 48 = 12 x^2, and the function is right on 3 other functions.", "")


class watch_backward:
    """Count the backward passes through the graph node of ``y`` (a hook on ``y.grad_fn``) and the
    times a backward pass stored a gradient into the ``.grad`` of a leaf of y's graph (a hook on
    each leaf, which ``torch.autograd.grad`` does not trigger: it returns gradients without storing them).

        x = torch.tensor(2.0, requires_grad=True)
        y = x ** 3
        passes = watch_backward(y)
    """

    def __init__(self, y):
        if not isinstance(y, torch.Tensor) or y.grad_fn is None:
            raise TypeError("watch_backward(y) needs a tensor y computed from a tensor that requires grad, "
                            "e.g. y = x ** 3 with x = torch.tensor(2.0, requires_grad=True).")
        self.node, self.count = y.grad_fn, 0
        self.stored = {}  # id(leaf) -> [times backward stored into leaf.grad, the .grad it left]
        self.node.register_hook(self._hook)
        for leaf in _leaves(y.grad_fn):
            self.stored[id(leaf)] = [0, None]
            leaf.register_post_accumulate_grad_hook(self._stored_hook)

    def _hook(self, grad_inputs, grad_outputs):
        self.count += 1

    def _stored_hook(self, leaf):
        entry = self.stored[id(leaf)]
        entry[0] += 1
        entry[1] = leaf.grad.detach().clone()

    def __repr__(self) -> str:
        return f"watch_backward({self.count} backward passes so far)"


def _leaves(node) -> list:
    """The leaf tensors (``AccumulateGrad`` nodes' variables) of the graph below ``node``."""
    leaves, seen, todo = [], set(), [node]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def check_backward_twice(x, y, passes) -> None:
    """Exercise 2: two backward passes through the one graph of y = x^3 at x = 2 leave x.grad = 12 + 12."""
    if not isinstance(passes, watch_backward):
        verdict(False, "", "pass the counter made by passes = watch_backward(y), right after y = x ** 3.")
        return
    if not isinstance(y, torch.Tensor) or y.grad_fn is not passes.node:
        verdict(False, "", "y is not the tensor the counter watches: y was computed again, which builds a second "
                           "graph. Keep the one y and call y.backward(...) on it twice.")
        return
    if not isinstance(x, torch.Tensor) or id(x) not in passes.stored:
        verdict(False, "", "x is not the tensor y was computed from: pass the x of y = x ** 3.")
        return
    grad_x = None if x.grad is None else float(x.grad.detach())
    stores, left = passes.stored[id(x)]
    if passes.count == 0:
        hint = ("x.grad was set by hand: no backward pass went through y's graph." if grad_x is not None else
                "no backward pass went through y's graph yet: call y.backward(...) twice.")
        verdict(False, "", hint)
    elif passes.count == 1:
        verdict(False, "", f"one backward pass went through y's graph (x.grad = {grad_x:g}); a doubled gradient or "
                           "a second graph is not a second pass. Call y.backward(...) twice on this y: the first "
                           "call must keep the graph for the second (which argument?).")
    elif passes.count > 2:
        verdict(False, "", f"{passes.count} backward passes went through y's graph: the exercise asks for two "
                           "(start again from a fresh x and y).")
    elif stores < 2:
        verdict(False, "", f"two passes went through y's graph, but only {stores} of them stored into x.grad: "
                           "torch.autograd.grad returns the gradient without adding it to x.grad. Call "
                           "y.backward(...) twice and let backward accumulate x.grad.")
    elif x.grad is None or not torch.equal(x.grad.detach(), left):
        verdict(False, "", "x.grad was changed after the backward calls: leave it as the second backward "
                           "left it (start again from a fresh x and y).")
    else:
        verdict(math.isclose(grad_x, 24.0),
                "two backward passes through one graph, and .grad accumulated 12 + 12 = 24.",
                f"two passes, but x.grad is {grad_x}, expected 24 = 12 + 12: start again from a fresh x and y.")


def _maml_problems():
    """Small float64 regression tasks and models, the same on every call: (model, x_spt, y_spt,
    x_qry, y_qry, alpha), with other widths, sizes and step sizes than the notebook's."""
    problems = []
    for seed, hidden, k_shot, k_query, alpha in ((3, 6, 8, 8, 0.1), (4, 5, 5, 7, 0.037)):
        with torch.random.fork_rng(devices=[]):  # leave the notebook's random state alone
            torch.manual_seed(seed)
            model = SineMLP(hidden=hidden).double()
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(k_shot + k_query, 1, generator=g, dtype=torch.float64) * 10 - 5
        y = 2.0 * torch.sin(x - 0.5)
        problems.append((model, x[:k_shot], y[:k_shot], x[k_shot:], y[k_shot:], alpha))
    return problems


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
    for i, (model, x_spt, y_spt, x_qry, y_qry, alpha) in enumerate(_maml_problems()):
        exact, first = _reference_meta_gradients(model, x_spt, y_spt, x_qry, y_qry, alpha)
        with unavailable(*MAML_FUNCTIONS, student=meta_gradient):
            ran, got = call_student(meta_gradient, model, x_spt, y_spt, x_qry, y_qry, alpha, name="meta_gradient")
        if not ran:
            return
        if (got is None or not isinstance(got, (tuple, list)) or len(got) != len(exact)
                or not all(isinstance(g, torch.Tensor) and g.shape == e.shape for g, e in zip(got, exact))):
            verdict(False, "", "meta_gradient should return one gradient tensor per parameter of the model.")
            return
        got = [g.detach() for g in got]
        if all(torch.allclose(g, e, rtol=1e-7, atol=1e-10) for g, e in zip(got, exact)):
            continue
        if all(torch.allclose(g, f, rtol=1e-7, atol=1e-10) for g, f in zip(got, first)):
            verdict(False, "", "this is still the first-order meta-gradient (dphi/dtheta treated as I): the inner "
                               "gradient is computed without a graph. Which argument of autograd.grad keeps it?")
        elif i > 0:
            verdict(False, "", f"right on the first network, but off on a second one (alpha = {alpha}, other sizes): "
                               "use the arguments, alpha included, rather than fixed values.")
        else:
            verdict(False, "", "the meta-gradient matches neither the exact nor the first-order one: "
                               "phi = theta - alpha * grad(support loss), then differentiate the query loss at phi "
                               "with respect to theta.")
        return
    verdict(True, "the meta-gradient includes the (I - alpha H) term: it equals the exact one, on two networks "
                  "and step sizes.", "")

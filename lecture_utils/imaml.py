"""Implicit MAML (Rajeswaran, Finn, Kakade & Levine 2019): the meta-gradient from the inner solution alone.

§2's problem is the cost of differentiating through the inner loop: second-order MAML keeps the
graph of every inner step until the outer backward pass, so its memory grows with their number
(notebook 03 measures it). iMAML gives the inner loop a problem whose solution can be
differentiated without the path that reached it, a support loss pulled towards θ::

    ϕ_i = argmin_ϕ  L_spt(ϕ) + λ/2 ‖ϕ - θ‖²

At the minimum ∇L_spt(ϕ_i) + λ(ϕ_i - θ) = 0. Differentiating that equation in θ (the implicit
function theorem) gives (H + λI) dϕ_i/dθ = λI with H = ∇²L_spt(ϕ_i), so the meta-gradient of
task i is::

    dL_qry(ϕ_i)/dθ = (I + H/λ)⁻¹ ∇L_qry(ϕ_i)

It depends on ϕ_i alone. The inner loop keeps no graph, and memory does not grow with the number
of inner steps. The inverse is never formed: conjugate gradient (``conjugate_gradient``) solves
(I + H/λ) g = ∇L_qry(ϕ_i) from products v + Hv/λ, each one Hessian-vector product by double
backward (notebook 02). Two approximations, as in the paper: ``inner_steps`` gradient steps from θ
only approach the minimiser, and CG stops after ``cg_steps`` steps. With both run to convergence the
meta-gradient is exact (tests/test_imaml.py checks it in float64).

To share ``training.meta_train`` with MAML, ``IMAML.objective`` returns a surrogate, as Reptile does:
its value is the mean query loss, its θ-gradient the mean over tasks of the implicit meta-gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lecture_utils.batching import over_tasks
from lecture_utils.maml import InnerLoopAlgorithm, adapt
from lecture_utils.models import parameters_of
from lecture_utils.validation import (LOSSES, check_callable, check_choice, check_count, check_inner_lr,
                                      check_inner_steps, check_positive)

__all__ = ["IMAML", "conjugate_gradient"]

BATCHINGS = ("auto", "loop", "vmap")  # for test-time predictions; the meta-gradient runs task by task


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, steps: int) -> Tensor:
    """x ≈ A⁻¹ b for a symmetric positive definite A known only through ``matvec(v) = A v``:
    ``steps`` steps of conjugate gradient from x = 0 (in exact arithmetic, exact after len(b)
    steps; it stops early if the residual is exactly zero)."""
    steps = check_count("steps", steps)
    check_callable(matvec, "matvec", "lambda v: A @ v")
    x = torch.zeros_like(b)
    r = b.clone()                      # the residual b - A x
    p = r.clone()                      # the search direction
    rr = r @ r
    for _ in range(steps):
        if rr == 0:
            break
        ap = matvec(p)
        step = rr / (p @ ap)           # the exact line search along p
        x = x + step * p
        r = r - step * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p      # the next direction, A-conjugate to the previous ones
        rr = rr_new
    return x


def flat(tensors) -> Tensor:
    """Tensors as one vector (the parameters of a network, or their gradients)."""
    return torch.cat([t.reshape(-1) for t in tensors])


@dataclass(frozen=True)
class IMAML(InnerLoopAlgorithm):
    """iMAML as a meta-objective over a batch of tasks.

    The inner loop takes ``inner_steps`` gradient steps of size ``inner_lr`` on the support loss
    plus λ/2‖ϕ - θ‖² (``lam`` is λ); the meta-gradient of each task is (I + H/λ)⁻¹ ∇L_qry(ϕ_i) by
    ``cg_steps`` steps of conjugate gradient. ``objective(model, batch)`` returns a surrogate
    whose value is the mean query loss and whose θ-gradient is the mean implicit meta-gradient,
    and the query predictions [T, Q, ...]. It runs task by task; ``batching`` (``"loop"``,
    ``"vmap"`` or ``"auto"``) applies to test-time predictions.
    """

    task: str = "regression"
    inner_lr: float = 0.01
    inner_steps: int = 5
    lam: float = 1.0
    cg_steps: int = 5
    batching: str = "auto"

    def __post_init__(self):
        check_choice(self.task, tuple(LOSSES), "task type")
        check_choice(self.batching, BATCHINGS, "batching for iMAML")
        check_inner_lr(self.inner_lr)
        check_inner_steps(self.inner_steps)
        check_positive("lam", self.lam)
        check_count("cg_steps", self.cg_steps)
        if self.inner_lr * self.lam >= 2:
            raise ValueError(f"inner_lr * lam must be < 2, got {self.inner_lr:g} * {self.lam:g}: each inner step "
                             "multiplies ϕ - θ by (1 - inner_lr * lam), so the pull towards θ would diverge; "
                             "lower inner_lr or lam")

    def adapt(self, model: nn.Module, params, x_spt, y_spt, steps: int | None = None) -> dict[str, Tensor]:
        """ϕ_i ≈ argmin_ϕ L_spt(ϕ) + λ/2‖ϕ - θ‖², θ = ``params``: gradient steps from θ, each MAML's
        inner step (``maml.adapt``, first order) then the pull towards θ, -αλ(ϕ - θ). No graph."""
        theta = {n: p.detach() for n, p in params.items()}
        phi = theta                                                    # ϕ starts at θ
        for _ in range(self.steps_or_default(steps)):
            stepped = adapt(model, phi, x_spt, y_spt, loss_fn=self.loss_fn, inner_lr=self.inner_lr, first_order=True)
            phi = {n: stepped[n] - self.inner_lr * self.lam * (phi[n] - theta[n]) for n in phi}
        return phi

    def task_meta_gradient(self, model: nn.Module, phi: dict[str, Tensor], x_spt, y_spt, x_qry, y_qry):
        """One task's query loss and predictions at ϕ_i, and its implicit meta-gradient
        (I + H/λ)⁻¹ ∇L_qry(ϕ_i) as one vector, H the Hessian of the support loss at ϕ_i."""
        with torch.enable_grad():
            phi = {n: w.detach().requires_grad_() for n, w in phi.items()}
            weights = list(phi.values())
            y_qry_pred = functional_call(model, phi, (x_qry,))
            qry_loss = self.loss_fn(y_qry_pred, y_qry)
            qry_grad = flat(torch.autograd.grad(qry_loss, weights))
            spt_loss = self.loss_fn(functional_call(model, phi, (x_spt,)), y_spt)
            spt_grad = flat(torch.autograd.grad(spt_loss, weights, create_graph=True))

            def matvec(v):                                             # (I + H/λ) v
                hv = flat(torch.autograd.grad(spt_grad @ v, weights, retain_graph=True))   # H v
                return v + hv / self.lam

            meta_grad = conjugate_gradient(matvec, qry_grad, self.cg_steps)
        return qry_loss.detach(), y_qry_pred.detach(), meta_grad

    def objective(self, model: nn.Module, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """A surrogate whose value is the mean query loss over the tasks and whose θ-gradient is
        the mean implicit meta-gradient, and the query predictions [T, Q, ...]."""
        batch = self.check_batch(batch, model)
        theta = parameters_of(model)
        tasks = []
        for x_spt, y_spt, x_qry, y_qry in zip(*batch):                # task by task
            phi = self.adapt(model, theta, x_spt, y_spt, steps)
            tasks.append(self.task_meta_gradient(model, phi, x_spt, y_spt, x_qry, y_qry))
        losses, preds, grads = (torch.stack(column) for column in zip(*tasks))
        pull = flat(theta.values()) @ grads.mean(0)                    # its θ-gradient: the mean meta-gradient
        return losses.mean() + (pull - pull.detach()), preds          # value: the mean query loss

    def predict_steps(self, model: nn.Module, batch, steps) -> list[Tensor]:
        """Query predictions after each step count in ``steps`` (None is ``inner_steps``), each
        count from its own inner loop from θ (continuing from the ϕ of a smaller count, as MAML's
        ``predict_steps`` does, would pull towards that ϕ instead of θ). Test time only."""
        batch = self.check_batch(batch, model)
        theta = {n: p.detach() for n, p in parameters_of(model).items()}
        counts = [self.steps_or_default(s) for s in steps]

        def after(count):
            def one_task(x_spt, y_spt, x_qry):
                return functional_call(model, self.adapt(model, theta, x_spt, y_spt, count), (x_qry,))
            return over_tasks(model, self.batching, one_task, batch.x_spt, batch.y_spt, batch.x_qry)

        with torch.no_grad():
            return [after(count) for count in counts]

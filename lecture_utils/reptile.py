"""Reptile (Nichol, Achiam & Schulman 2018), the lecture's Appendix C.

For each task: several plain SGD steps from θ give ϕ_i. Then move θ towards them::

    θ <- θ + ε * mean_i(ϕ_i - θ)

so (θ - ϕ_i) plays the role of a gradient, with no second derivatives at all. To share the
training loop with MAML, ``Reptile.objective`` returns a surrogate loss whose θ-gradient is
exactly θ - mean_i(ϕ_i): half the squared distance to the (detached) adapted weights. Plain SGD
with learning rate ε on it is the update above. (The Reptile paper's own Omniglot runs take their
inner steps with Adam and use the plain interpolation above outside; this package's inner loop is
plain SGD, and ``training.meta_train`` applies Adam to the surrogate, as it does for MAML.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from lecture_utils.batching import over_tasks
from lecture_utils.maml import InnerLoopAlgorithm, adapt
from lecture_utils.models import parameters_of
from lecture_utils.tasks import TaskBatch
from lecture_utils.validation import check_choice, check_same_task_count

ADAPT_ON = ("support", "support+query")


@dataclass(frozen=True)
class Reptile(InnerLoopAlgorithm):
    """Reptile's inner loop (``inner_steps`` SGD steps of size ``inner_lr`` on each task's
    support set) and its outer direction mean_i(ϕ_i - θ).

    ``adapt_on`` chooses what the inner loop sees during meta-training: ``"support"`` (the K
    support examples only), or ``"support+query"``, every example the task holds, which is what
    MAML's meta-gradient sees too and what the Reptile paper does (it meta-trains with more shots
    than it tests with). At test time (``predict``, ``training.evaluate``) Reptile always adapts
    on the support set alone and predicts the query set.
    """

    task: str = "regression"
    inner_lr: float = 0.01
    inner_steps: int = 5
    batching: str = "auto"
    adapt_on: str = "support"
    min_inner_steps = 1  # with no inner step Reptile does nothing (a class constant, not a field)

    def __post_init__(self):
        self._check_settings()
        check_choice(self.adapt_on, ADAPT_ON, "adapt_on")

    def adapt(self, model, params, x_spt, y_spt, steps: int | None = None):
        """ϕ_i: plain SGD on the support set; no graph is kept (Reptile never needs one)."""
        return adapt(model, params, x_spt, y_spt, loss_fn=self.loss_fn, inner_lr=self.inner_lr,
                     steps=self.steps_or_default(steps), first_order=True)

    def adapted_params(self, model: nn.Module, batch, steps: int | None = None) -> dict[str, Tensor]:
        """ϕ_i for every task of the batch, stacked: name -> [T, *shape]."""
        batch = self.check_batch(batch, model)
        params = {n: p.detach() for n, p in parameters_of(model).items()}
        return over_tasks(model, self.batching, lambda xs, ys: self.adapt(model, params, xs, ys, steps),
                          batch.x_spt, batch.y_spt)

    def direction(self, model: nn.Module, batch) -> dict[str, Tensor]:
        """mean_i(ϕ_i - θ): the step Reptile takes, before scaling by ε."""
        phis = self.adapted_params(model, batch)
        return {n: phis[n].mean(0) - p.detach() for n, p in parameters_of(model).items()}

    def objective(self, model: nn.Module, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """A surrogate whose θ-gradient is θ - mean_i(ϕ_i), and each task's query predictions
        after adaptation (for monitoring; they do not enter the gradient). With
        ``adapt_on="support+query"`` ϕ_i has seen the query examples too, so these predictions
        are training-set predictions; ``predict`` (adapting on the support set alone) gives the honest
        test-time ones."""
        batch = self.check_batch(batch, model)
        if self.adapt_on == "support+query":
            batch = TaskBatch(torch.cat([batch.x_spt, batch.x_qry], 1), torch.cat([batch.y_spt, batch.y_qry], 1),
                              batch.x_qry, batch.y_qry)
        theta = parameters_of(model)
        phis = self.adapted_params(model, batch, steps)
        surrogate = sum(0.5 * ((p - phis[n].mean(0)) ** 2).sum() for n, p in theta.items())
        return surrogate, self._query_predictions(model, phis, batch.x_qry)

    def _query_predictions(self, model: nn.Module, phis: dict[str, Tensor], x_qry: Tensor) -> Tensor:
        """f(x_qry, ϕ_i) for every task: one batched call (vmap) or a loop, as ``batching`` says."""
        with torch.no_grad():
            return over_tasks(model, self.batching, lambda phi, xq: functional_call(model, phi, (xq,)), phis, x_qry)


def gradient_inner_product(model: nn.Module, params: dict[str, Tensor], x_a: Tensor, y_a: Tensor,
                           x_b: Tensor, y_b: Tensor, loss_fn) -> Tensor:
    """g_A · g_B for each task: the dot product of the gradients at θ of two mini-batches A and B
    of the same task, for tasks stacked along the first dimension (``x_a``: [T, n_A, ...]).
    Returns a [T] tensor.

    This is the quantity of Nichol et al. (2018, §5), lecture Appendix C: to second order in the
    inner step size, Reptile's update adds a step up ∇(g_A · g_B) to the loss descent. With A and
    B drawn independently, its expectation over the mini-batches is |∇ E[L]|², the squared norm of
    the task's own expected gradient.
    """
    check_same_task_count(x_a=x_a, y_a=y_a, x_b=x_b, y_b=y_b)
    params = {n: p.detach() for n, p in params.items()}

    def batch_grad(x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return grad(lambda w: loss_fn(functional_call(model, w, (x,)), y))(params)

    def one_task(xa, ya, xb, yb):
        g_a, g_b = batch_grad(xa, ya), batch_grad(xb, yb)
        return sum((g_a[n] * g_b[n]).sum() for n in params)

    return vmap(one_task)(x_a, y_a, x_b, y_b)

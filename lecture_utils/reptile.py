"""Reptile (Nichol, Achiam & Schulman 2018), the lecture's Appendix C.

For each task: several plain SGD steps from θ give ϕ_i. Then move θ towards them::

    θ <- θ + ε * mean_i(ϕ_i - θ)

so (θ - ϕ_i) plays the role of a gradient, with no second derivatives at all. To share the
training loop with MAML, ``Reptile.objective`` returns a surrogate loss whose θ-gradient is
exactly θ - mean_i(ϕ_i): half the squared distance to the (detached) adapted weights. Plain SGD
with learning rate ε on it is the update above; Adam on it is what the Reptile paper used for
Omniglot.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lecture_utils.maml import InnerLoop, adapt, over_tasks
from lecture_utils.models import parameters_of


@dataclass(frozen=True)
class Reptile(InnerLoop):
    """Reptile's inner loop (``inner_steps`` SGD steps of size ``inner_lr`` on each task's
    support set) and its outer direction mean_i(ϕ_i - θ)."""

    task: str = "regression"
    inner_lr: float = 0.01
    inner_steps: int = 5
    batching: str = "auto"
    min_inner_steps = 1  # with no inner step Reptile does nothing (a class constant, not a field)

    def __post_init__(self):
        self._check_settings()

    def adapt(self, model, params, x_spt, y_spt, steps: int | None = None):
        """ϕ_i: plain SGD on the support set; no graph is kept (Reptile never needs one)."""
        return adapt(model, params, x_spt, y_spt, loss_fn=self.loss_fn, inner_lr=self.inner_lr,
                     steps=self.inner_steps if steps is None else steps, approx="first_order")

    def adapted_params(self, model: nn.Module, batch, steps: int | None = None) -> dict[str, Tensor]:
        """ϕ_i for every task of the batch, stacked: name -> [T, *shape]."""
        batch = self.check_batch(batch)
        params = {n: p.detach() for n, p in parameters_of(model).items()}
        return over_tasks(model, self.batching, lambda xs, ys: self.adapt(model, params, xs, ys, steps),
                          batch.x_spt, batch.y_spt)

    def direction(self, model: nn.Module, batch) -> dict[str, Tensor]:
        """mean_i(ϕ_i - θ): the step Reptile takes, before scaling by ε."""
        phis = self.adapted_params(model, batch)
        return {n: phis[n].mean(0) - p.detach() for n, p in parameters_of(model).items()}

    def objective(self, model: nn.Module, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """A surrogate whose θ-gradient is θ - mean_i(ϕ_i), and each task's query predictions
        after adaptation (for monitoring; they do not enter the gradient)."""
        batch = self.check_batch(batch)
        theta = parameters_of(model)
        phis = self.adapted_params(model, batch, steps)
        surrogate = sum(0.5 * ((p - phis[n].mean(0)) ** 2).sum() for n, p in theta.items())
        with torch.no_grad():
            preds = torch.stack([functional_call(model, {n: phis[n][i] for n in theta}, (x_qry,))
                                 for i, x_qry in enumerate(batch.x_qry)])
        return surrogate, preds

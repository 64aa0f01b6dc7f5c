"""Meta-SGD (Li, Zhou, Chen & Li 2017): MAML whose inner step size is learned, one per weight.

§2 of the lecture calls MAML's bi-level optimisation unstable, and the inner step size α is
where that shows: notebook 03 saw first-order MAML collapse at α = 0.4 and train at α = 0.1.
Meta-SGD stops hand-tuning α: it is a tensor of θ's shape, one step size per entry, and the outer
loop meta-trains it together with θ::

    ϕ_i = θ - α ∘ ∇_θ L(f(x_spt; θ), y_spt)        (∘: entry by entry)
    (θ, α) <- (θ, α) - β ∇_(θ, α) L(f(x_qry; ϕ_i), y_qry)

The design: α lives in the model, not in the algorithm. ``MetaSGDLearner`` wraps the network and
holds one log α tensor per parameter of it, so ``model.parameters()`` is θ and log α together:
``training.meta_train`` steps both with its one Adam, a checkpoint saves both, and the training
loop does not change. ``MetaSGD`` is the objective: ``maml.adapt`` with α as a dict name -> tensor
(the same inner loop as MAML's), then the mean query loss, exactly as ``MAML.objective``.

The model learns log α, not α: α stays a step size (> 0, as ``adapt`` requires) and Adam changes it
by relative amounts, alike for an α of 0.4 and one of 0.001. The paper learns α itself, whose
entries may also turn negative; here they cannot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lecture_utils.batching import over_tasks
from lecture_utils.maml import InnerLoopAlgorithm, adapt
from lecture_utils.models import parameters_of
from lecture_utils.validation import (LOSSES, check_choice, check_flag, check_inner_lr, check_inner_steps,
                                      check_model)

__all__ = ["MetaSGD", "MetaSGDLearner"]

NET, LOG_LR = "net.", "log_lr."  # the prefixes of θ's and of log α's names in the learner
BATCHINGS = ("auto", "loop", "vmap")  # "expand" batches MAML's one-α inner loop only


def _key(name: str) -> str:
    """The ``log_lr`` entry of parameter ``name`` (a ParameterDict key may not contain a dot)."""
    return name.replace(".", "-")


class MetaSGDLearner(nn.Module):
    """The network θ (``net``) and its learned inner step sizes α = exp(log α), one per entry of θ
    (``log_lr``, started at ``init_lr`` everywhere). Its forward pass is the network's."""

    def __init__(self, net: nn.Module, init_lr: float = 0.01):
        super().__init__()
        check_model(net)
        init_lr = check_inner_lr(init_lr, "init_lr")
        self.net = net
        self.log_lr = nn.ParameterDict({_key(n): nn.Parameter(torch.full_like(p, math.log(init_lr)))
                                        for n, p in net.named_parameters()})

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def split(self, params: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """θ and α from the learner's parameters as a dict (``parameters_of(learner)``), both named
        as the network names its parameters: ``{"body.0.weight": ...}``."""
        theta = {n[len(NET):]: p for n, p in params.items() if n.startswith(NET)}
        return theta, {n: params[LOG_LR + _key(n)].exp() for n in theta}

    def inner_lrs(self) -> dict[str, Tensor]:
        """The learned α of every parameter of the network, detached (to plot or print)."""
        return {n: alpha.detach() for n, alpha in self.split(parameters_of(self))[1].items()}


@dataclass(frozen=True)
class MetaSGD(InnerLoopAlgorithm):
    """Meta-SGD's meta-objective over a batch of tasks, for a ``MetaSGDLearner``.

    ``objective(model, batch)`` returns the mean query loss, whose gradient with respect to the
    learner's parameters is the meta-gradient for θ and log α, and the query predictions
    ``[T, Q, ...]``. ``first_order=True`` treats dϕ_i/dθ as I, as in MAML; α still gets its
    gradient, since ϕ_i = θ - α ∘ g depends on α even when g is held fixed. ``init_lr`` is α's
    value before training (``learner(net)`` wraps a network with it). ``batching``: ``"loop"``,
    ``"vmap"`` or ``"auto"`` (see ``batching.py``), all with the same numbers.
    """

    task: str = "regression"
    init_lr: float = 0.01
    inner_steps: int = 1
    first_order: bool = False
    batching: str = "auto"

    def __post_init__(self):
        check_choice(self.task, tuple(LOSSES), "task type")
        check_choice(self.batching, BATCHINGS, "batching for Meta-SGD")
        check_inner_lr(self.init_lr, "init_lr")
        check_inner_steps(self.inner_steps)
        check_flag(self.first_order, "first_order")

    def learner(self, net: nn.Module) -> MetaSGDLearner:
        """``net`` with an α of ``init_lr`` for every entry of its parameters."""
        return MetaSGDLearner(net, self.init_lr)

    def check_batch(self, batch, model: nn.Module):
        if not isinstance(model, MetaSGDLearner):
            raise ValueError(f"Meta-SGD trains θ and α together, so it needs the network wrapped with its α: "
                             f"model = MetaSGD(...).learner(net) or MetaSGDLearner(net, init_lr); got "
                             f"{type(model).__name__}")
        return super().check_batch(batch, model.net)

    def adapt(self, model: MetaSGDLearner, params, x_spt, y_spt, steps: int | None = None) -> dict[str, Tensor]:
        """ϕ_i for one task: ``maml.adapt`` on the network with the learned α of each parameter.
        ``params`` and the result are the learner's (θ as ``net.*``; log α passes through)."""
        theta, alpha = model.split(params)
        phi = adapt(model.net, theta, x_spt, y_spt, loss_fn=self.loss_fn, steps=self.steps_or_default(steps),
                    inner_lr=alpha, first_order=self.first_order)
        return {**params, **{NET + n: w for n, w in phi.items()}}

    def objective(self, model: MetaSGDLearner, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """The mean over tasks of each task's query loss after adaptation (its gradient reaches θ
        and log α), and the query predictions [T, Q, ...]."""
        batch = self.check_batch(batch, model)
        params = parameters_of(model)                                   # θ and log α
        steps = self.steps_or_default(steps)

        def one_task(x_spt, y_spt, x_qry, y_qry):
            phi = self.adapt(model, params, x_spt, y_spt, steps)
            y_qry_pred = functional_call(model, phi, (x_qry,))          # f(x_qry, ϕ_i)
            return self.loss_fn(y_qry_pred, y_qry), y_qry_pred

        losses, preds = over_tasks(model, self.batching, one_task, *batch)
        return losses.mean(), preds

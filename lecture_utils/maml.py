"""MAML and its two cheap approximations: one inner loop, one meta-objective (lecture §1, §2).

Pseudo-code 1 of the notes, and where each line lives here::

    for x_spt, y_spt, x_qry, y_qry in tasks:
        y_spt_pred = f(x_spt, θ)                  ┐
        spt_loss = loss(y_spt, y_spt_pred)        │ adapt()
        ϕ_i = θ - α*grad(spt_loss, θ)             ┘
        y_qry_pred = f(x_qry, ϕ_i)                ┐ MAML.task_loss()
        qry_loss = loss(y_qry, y_qry_pred)        ┘
    θ = θ - β*grad(qry_loss, θ)                   MAML.objective() is the mean qry_loss over the
                                                  tasks; training.meta_train() takes the step

§2 gives two remedies for the cost of differentiating through ``grad``; each is one flag:

- ``first_order=True``: treat dϕ_i/dθ as I, i.e. cut the graph of the inner gradient;
- ``head_only=True``: adapt only the last layer (known as ANIL); the body still learns in the
  outer loop.

The inner gradient is ``torch.func.grad``. Like ``torch.autograd.grad(..., create_graph=True)``
(Appendix A) it keeps the graph of the gradient, so the outer backward reaches θ through it; unlike
``autograd.grad`` it also works under ``torch.func.vmap``. Taking it under ``torch.no_grad()``
keeps no such graph, as ``create_graph=False``: that is the first-order approximation.

How the tasks of a meta-batch are run (one at a time, or batched for speed) is not the
algorithm's business: ``batching.py`` applies a strategy from outside, and every strategy gives
the numbers of the per-task loop written here (tests/test_batching.py checks it in float64).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad

from lecture_utils import batching
from lecture_utils.models import is_head, parameters_of
from lecture_utils.tasks import as_task_batch
from lecture_utils.validation import (LOSSES, check_batch, check_choice, check_class_ids, check_flag,
                                      check_inner_loop, check_inner_lr, check_inner_steps, check_model, model_dtype)

__all__ = ["APPROXIMATIONS", "MAML", "InnerLoopAlgorithm", "adapt"]

# The variants of §2 by name, as MAML's two flags: MAML(..., **APPROXIMATIONS["first_order"]).
APPROXIMATIONS = {"second_order": {"first_order": False, "head_only": False},
                  "first_order": {"first_order": True, "head_only": False},
                  "head_only": {"first_order": False, "head_only": True}}


def adapt(model: nn.Module, params: dict[str, Tensor], x_spt: Tensor, y_spt: Tensor, *, loss_fn,
          steps: int = 1, inner_lr: float | dict[str, Tensor] = 0.01, first_order: bool = False,
          head_only: bool = False) -> dict[str, Tensor]:
    """The inner loop: ``steps`` gradient steps on one task's support set, from θ to ϕ_i.

    ``params`` is θ as a dict name -> tensor; the result is ϕ_i in the same form.
    ``first_order`` treats dϕ_i/dθ as I (§2, remedy 1); ``head_only`` adapts only the ``head.*``
    parameters (§2, remedy 2). With neither, the outer gradient sees dϕ_i/dθ = I - α·H: exact MAML.
    ``inner_lr`` is α: one number, or one per parameter (a dict name -> tensor, as Meta-SGD learns);
    the check hands it back per parameter.
    """
    steps, inner_lr = check_inner_loop(model, params, loss_fn, steps, inner_lr, head_only, is_head)
    phi = dict(params)                                               # ϕ_i starts at θ
    for _ in range(steps):
        fast = {n: w for n, w in phi.items() if is_head(n) or not head_only}   # the weights that adapt

        def spt_loss(fast):
            y_spt_pred = functional_call(model, {**phi, **fast}, (x_spt,))     # f(x_spt, θ)
            return loss_fn(y_spt_pred, y_spt)                                  # loss(y_spt, y_spt_pred)

        if first_order:
            with torch.no_grad():                                    # create_graph=False: the graph of
                grads = grad(spt_loss)(fast)                         # grad is cut, dϕ_i/dθ = I
        else:
            grads = grad(spt_loss)(fast)                             # create_graph=True: graph kept
        phi.update({n: w - inner_lr[n] * grads[n] for n, w in fast.items()})   # ϕ_i = θ - α*grad
    return phi


class InnerLoopAlgorithm:
    """What MAML and Reptile share: an inner loop of gradient steps on each task's support set.

    Subclasses are frozen dataclasses with the fields ``task`` ("regression" or
    "classification", which fixes the loss), ``inner_lr`` (α), ``inner_steps`` and ``batching``,
    and an ``adapt(model, params, x_spt, y_spt, steps)`` method.
    """

    min_inner_steps = 0

    def _check_settings(self) -> None:
        check_choice(self.task, tuple(LOSSES), "task type")
        check_choice(self.batching, batching.BATCHINGS, "batching")
        check_inner_lr(self.inner_lr)
        check_inner_steps(self.inner_steps, self.min_inner_steps)

    @property
    def loss_fn(self):
        return LOSSES[self.task]

    def check_batch(self, batch, model: nn.Module):
        """The meta-batch as a ``TaskBatch``, checked for this task type (and the model's dtype and,
        for classification, its number of classes)."""
        check_model(model)
        batch = check_batch(self.task, as_task_batch(batch), model_dtype(model))
        head = getattr(model, "head", None)
        if self.task == "classification" and isinstance(head, nn.Linear):
            for name in ("y_spt", "y_qry"):
                check_class_ids(getattr(batch, name), head.out_features, name)
        return batch

    def steps_or_default(self, steps: int | None) -> int:
        return self.inner_steps if steps is None else check_inner_steps(steps)

    def predict(self, model: nn.Module, batch, steps: int | None = None) -> Tensor:
        """Query predictions [T, Q, ...] after adapting on each task's support set (``steps``,
        default ``inner_steps``): what ``training.evaluate`` scores."""
        return self.predict_steps(model, batch, [steps])[0]

    def predict_steps(self, model: nn.Module, batch, steps) -> list[Tensor]:
        """Query predictions after each step count in ``steps`` (e.g. ``(1, 3, 10)``; None is
        ``inner_steps``), from one inner loop per task: 3 steps then 7 more give the ϕ_i of 10
        steps from θ, so no step is taken twice. Test time only: no gradient reaches θ."""
        return batching.predict_steps(self, model, self.check_batch(batch, model),
                                      [self.steps_or_default(s) for s in steps])


@dataclass(frozen=True)
class MAML(InnerLoopAlgorithm):
    """MAML (§1) or one of its approximations (§2) as a meta-objective over a batch of tasks.

    ``objective(model, batch)`` returns the mean query loss over the tasks, whose gradient with
    respect to θ is the meta-gradient, and the query predictions ``[T, Q, ...]``.
    ``batching`` says how the tasks are run, with the same numbers: ``"loop"`` (one task at a
    time, as written below), ``"vmap"``, ``"expand"`` or ``"auto"`` (the fastest for the model and
    device, measured by ``benchmarks/meta_gradient.py``); see ``batching.py``.
    """

    task: str = "regression"
    inner_lr: float = 0.01
    inner_steps: int = 1
    first_order: bool = False
    head_only: bool = False
    batching: str = "auto"

    def __post_init__(self):
        self._check_settings()
        check_flag(self.first_order, "first_order")
        check_flag(self.head_only, "head_only")

    def adapt(self, model, params, x_spt, y_spt, steps: int | None = None) -> dict[str, Tensor]:
        """ϕ_i for one task (``steps`` overrides the training value, e.g. at test time)."""
        return adapt(model, params, x_spt, y_spt, loss_fn=self.loss_fn, steps=self.steps_or_default(steps),
                     inner_lr=self.inner_lr, first_order=self.first_order, head_only=self.head_only)

    def task_loss(self, model, params, x_spt, y_spt, x_qry, y_qry, steps: int | None = None):
        """One task of Pseudo-code 1: adapt on the support set, then the query loss and predictions."""
        phi = self.adapt(model, params, x_spt, y_spt, steps)
        y_qry_pred = functional_call(model, phi, (x_qry,))          # f(x_qry, ϕ_i)
        return self.loss_fn(y_qry_pred, y_qry), y_qry_pred          # qry_loss = loss(y_qry, y_qry_pred)

    def objective(self, model: nn.Module, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """The meta-objective: the mean over tasks of each task's query loss (its θ-gradient is the
        meta-gradient), and the query predictions [T, Q, ...]."""
        batch = self.check_batch(batch, model)
        params = parameters_of(model)
        losses, preds = batching.task_losses(self, model, params, batch, self.steps_or_default(steps))
        return losses.mean(), preds

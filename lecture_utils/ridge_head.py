"""R2-D2 (Bertinetto, Henriques, Torr & Vedaldi 2019): the head solved in closed form by ridge regression.

§2's second remedy adapts only the head (ANIL: gradient steps on the last layer). R2-D2 takes it
to the end: for each task the head is the exact minimiser of a ridge regression on the body's
features of the support set, found by one linear solve, and the meta-gradient reaches the body
through that solve (``torch.linalg.solve`` is differentiable). There is no inner loop to unroll.

With X the support features [n, d] (n = N·K support images) and Y their one-hot labels [n, N]::

    W = argmin_W ‖X W - Y‖² + λ‖W‖²  =  (XᵀX + λ I_d)⁻¹ Xᵀ Y  =  Xᵀ (X Xᵀ + λ I_n)⁻¹ Y

The last form (the Woodbury identity) solves an n×n system instead of a d×d one: 5×5 for
5-way 1-shot, whatever the width of the features. The query logits are s · X_qry W, and the query
loss is the cross-entropy. λ and the output scale s are meta-learned with the body, as log λ and
log s so that both stay > 0. The paper also learns a bias added to the outputs; one number added
to every logit changes neither the softmax nor the cross-entropy (its gradient is zero), so it is
left out here.

The design: λ and s live in the model (``RidgeHeadLearner``, the body and these two numbers), so
``training.meta_train`` trains them with the body and a checkpoint saves them; ``R2D2`` is the
objective, with MAML's interface: ``objective(model, batch) -> (mean query loss, query logits)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lecture_utils.batching import over_tasks
from lecture_utils.models import Conv4
from lecture_utils.tasks import as_task_batch
from lecture_utils.validation import (LOSSES, check_batch, check_choice, check_class_ids, check_count, check_model,
                                      check_positive, model_dtype)

__all__ = ["R2D2", "RidgeHeadLearner", "ridge_weights"]

BATCHINGS = ("auto", "loop", "vmap")


def ridge_weights(features: Tensor, targets: Tensor, lam: Tensor | float) -> Tensor:
    """The ridge regression weights W [d, N] = Xᵀ (X Xᵀ + λI)⁻¹ Y for features X [n, d] and
    targets Y [n, N]: the minimiser of ‖X W - Y‖² + λ‖W‖², by an n×n solve (Woodbury)."""
    n = features.shape[0]
    gram = features @ features.T + lam * torch.eye(n, dtype=features.dtype, device=features.device)
    return features.T @ torch.linalg.solve(gram, targets)


class RidgeHeadLearner(nn.Module):
    """A body (features) whose head is solved per task by ridge regression: logits for the query
    set from the labelled support set of one task, ``model(x_spt, y_spt, x_qry)``. Holds the body,
    log λ and log s (started at ``lam`` and ``scale``), and the number of classes ``n_way``."""

    def __init__(self, body: nn.Module, n_way: int, lam: float = 1.0, scale: float = 1.0):
        super().__init__()
        check_model(body)
        self.n_way = check_count("n_way", n_way, minimum=2)
        self.body = body
        self.log_lam = nn.Parameter(torch.tensor(math.log(check_positive("lam", lam))))
        self.log_scale = nn.Parameter(torch.tensor(math.log(check_positive("scale", scale))))

    @classmethod
    def for_characters(cls, n_way: int, hidden: int = 64, **kwargs) -> RidgeHeadLearner:
        """The body of ``Conv4`` (four conv blocks, ``hidden`` features) with a ridge head."""
        return cls(Conv4(n_way, hidden).body, n_way, **kwargs)

    def forward(self, x_spt: Tensor, y_spt: Tensor, x_qry: Tensor) -> Tensor:
        """Query logits [Q, N] of one task: the head fitted to the support features in closed form."""
        features = self.body(x_spt)                                       # X   [n, d]
        targets = F.one_hot(y_spt, self.n_way).to(features.dtype)         # Y   [n, N]
        weights = ridge_weights(features, targets, self.log_lam.exp())    # W   [d, N]
        return self.log_scale.exp() * (self.body(x_qry) @ weights)        # s · X_qry W


@dataclass(frozen=True)
class R2D2:
    """R2-D2's meta-objective over a batch of classification tasks, for a ``RidgeHeadLearner``.

    ``objective(model, batch)`` returns the mean query cross-entropy, whose gradient reaches the
    body, λ and the scale through the solve, and the query logits ``[T, Q, N]``. Each task runs
    the body on its own support and query sets, as MAML does (batch norm sees one set at a time).
    ``batching``: ``"loop"``, ``"vmap"`` or ``"auto"`` (see ``batching.py``), the same numbers.
    """

    batching: str = "auto"
    task = "classification"  # the only task type (a class constant, not a field)

    def __post_init__(self):
        check_choice(self.batching, BATCHINGS, "batching for R2-D2")

    def check_batch(self, batch, model: nn.Module):
        if not isinstance(model, RidgeHeadLearner):
            raise ValueError("R2-D2 needs a body with a ridge head: model = RidgeHeadLearner(body, n_way) or "
                             f"RidgeHeadLearner.for_characters(n_way); got {type(model).__name__}")
        batch = check_batch(self.task, as_task_batch(batch), model_dtype(model))
        for name in ("y_spt", "y_qry"):
            check_class_ids(getattr(batch, name), model.n_way, name)
        return batch

    def predict(self, model: RidgeHeadLearner, batch, steps: int | None = None) -> Tensor:
        """Query logits [T, Q, N] (what ``training.evaluate`` scores)."""
        return self.objective(model, batch, steps)[1]

    def objective(self, model: RidgeHeadLearner, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        if steps is not None:
            raise ValueError("R2-D2 solves its head in closed form: it has no inner steps to change; pass steps=None")
        batch = self.check_batch(batch, model)
        logits = over_tasks(model, self.batching, model, batch.x_spt, batch.y_spt, batch.x_qry)
        return LOSSES[self.task](logits.flatten(0, 1), batch.y_qry.flatten()), logits

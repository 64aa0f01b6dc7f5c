"""The meta-batch of tasks that every MAML loop in the notebooks consumes (Lecture 4, section 1).

In the lecture's pseudo-code one meta-training step samples a batch of tasks T_i, adapts on each
task's support set (x_spt, y_spt) in the inner loop, and scores the adapted parameters on the
task's query set (x_qry, y_qry) in the outer loop.  ``TaskBatch`` holds exactly those four
tensors with the task index first, so ``batch.x_spt[i]`` is task i's support inputs.
"""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from lecture_utils.validation import check_batch_tuple, check_task_index


class TaskBatch(NamedTuple):
    """A meta-batch of tasks, named as in the lecture's pseudo-code."""

    x_spt: Tensor  # [T, S, ...] support inputs
    y_spt: Tensor  # [T, S, ...] support targets (float for regression, long class ids for classification)
    x_qry: Tensor  # [T, Q, ...] query inputs
    y_qry: Tensor  # [T, Q, ...] query targets

    def to(self, device) -> TaskBatch:
        """The same tasks on ``device``."""
        return batch_to(self, device)

    def task(self, i: int) -> TaskBatch:
        """Task ``i`` alone, keeping a leading task dimension of 1 (negative ``i`` counts from the end)."""
        return batch_task(self, i)


def batch_to(batch, device):
    """A batch of any NamedTuple of per-task tensors (``TaskBatch``, ``SinusoidBatch``) on ``device``."""
    return type(batch)(*(tensor.to(device) for tensor in batch))


def batch_task(batch, i: int):
    """Task ``i`` of a NamedTuple batch of per-task tensors, with its leading task dimension of 1."""
    i = check_task_index(i, len(batch[0]))
    return type(batch)(*(tensor[i:i + 1] for tensor in batch))


def as_task_batch(batch) -> TaskBatch:
    """The four tensors of a meta-batch by name: a ``TaskBatch``, a ``SinusoidBatch`` or a
    plain tuple ``(x_spt, y_spt, x_qry, y_qry)``."""
    check_batch_tuple(batch)
    if hasattr(batch, "x_spt"):
        return TaskBatch(batch.x_spt, batch.y_spt, batch.x_qry, batch.y_qry)
    return TaskBatch(*batch[:4])

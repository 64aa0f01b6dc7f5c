"""The meta-batch of tasks that every MAML loop in the notebooks consumes (Lecture 4, section 1).

In the lecture's pseudo-code one meta-training step samples a batch of tasks T_i, adapts on each
task's support set (x_spt, y_spt) in the inner loop, and scores the adapted parameters on the
task's query set (x_qry, y_qry) in the outer loop.  ``TaskBatch`` holds exactly those four
tensors with the task index first, so ``batch.x_spt[i]`` is task i's support inputs.
"""
from __future__ import annotations

from numbers import Integral
from typing import NamedTuple

import torch
from torch import Tensor


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


def check_task_index(i: int, num_tasks: int) -> int:
    """Return ``i`` as a non-negative task index, or raise a ValueError naming the valid range."""
    if isinstance(i, bool) or not isinstance(i, Integral) or not -num_tasks <= i < num_tasks:
        raise ValueError(f"task index {i!r} is out of range: this batch holds {num_tasks} tasks, "
                         f"so use an integer in {-num_tasks}..{num_tasks - 1}")
    return int(i) % num_tasks


def check_count(name: str, value: int, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise a ValueError naming ``name``.

    Used for every count a notebook passes in: tasks per batch, shots, ways, drawings, characters.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_cpu_generator(generator) -> torch.Generator:
    """Return ``generator`` if it is a CPU ``torch.Generator``, else raise a ValueError.

    Every task family draws from a CPU generator and only then moves the batch to the device,
    so one seed gives the same tasks on the CPU, a GPU or Apple MPS.
    """
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                         f"so that one seed gives the same tasks on every device; got {generator!r}")
    return generator

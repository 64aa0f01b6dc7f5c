"""Sinusoid regression tasks, the running example of Lecture 4, section 1 (MAML algorithm overview).

From the MAML paper (Finn et al. 2017, section 5.1): task i is y = A_i sin(x - phi_i) with the
amplitude A_i uniform in [0.1, 5.0] and the phase phi_i uniform in [0, pi]; inputs x are uniform in
[-5, 5].  A K-shot task gives K support points to adapt on and a query set to score the adapted
model.  The ranges are fields of ``SinusoidTasks``, so a notebook can also evaluate outside the
training distribution, e.g. ``SinusoidTasks(amplitude=(5.0, 10.0))``.

Every random number is drawn from a CPU ``torch.Generator`` and the finished batch is then moved to
``device``, so one seed gives the same tasks on the CPU, a GPU or Apple MPS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from lecture_utils.tasks import TaskBatch, batch_task, batch_to
from lecture_utils.validation import check_count, check_cpu_generator, check_float_dtype, check_range


def sinusoid(x: Tensor, amplitude, phase) -> Tensor:
    """``amplitude * sin(x - phase)``.

    ``amplitude`` and ``phase`` are numbers, or one value per task (shape [T]) for ``x`` of shape
    [T, n, 1]; per-task values are broadcast over each task's points.
    """
    return _per_task(amplitude, x, "amplitude") * torch.sin(x - _per_task(phase, x, "phase"))


class SinusoidBatch(NamedTuple):
    """Sinusoid tasks plus the amplitude and phase that made them (for plotting the true curve).

    Behaves like a ``TaskBatch`` (``.to``, ``.task``); ``.tasks`` is the plain ``TaskBatch``.
    """

    x_spt: Tensor  # [T, K, 1]
    y_spt: Tensor  # [T, K, 1]
    x_qry: Tensor  # [T, Q, 1]
    y_qry: Tensor  # [T, Q, 1]
    amplitude: Tensor  # [T]
    phase: Tensor  # [T]

    @property
    def tasks(self) -> TaskBatch:
        """The four support/query tensors as a ``TaskBatch``."""
        return TaskBatch(self.x_spt, self.y_spt, self.x_qry, self.y_qry)

    def to(self, device) -> SinusoidBatch:
        """The same tasks on ``device``."""
        return batch_to(self, device)

    def task(self, i: int) -> SinusoidBatch:
        """Task ``i`` alone, keeping a leading task dimension of 1 (negative ``i`` counts from the end)."""
        return batch_task(self, i)


@dataclass(frozen=True)
class SinusoidTasks:
    """The distribution over sinusoid tasks: uniform amplitude, phase and input ranges (low, high)."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self):
        for name in ("amplitude", "phase", "x_range"):
            object.__setattr__(self, name, check_range(name, getattr(self, name)))

    def sample(self, num_tasks: int, k_support: int, k_query: int, generator: torch.Generator,
               device=None, dtype: torch.dtype = torch.float32) -> SinusoidBatch:
        """Draw ``num_tasks`` tasks with ``k_support`` support and ``k_query`` query points each."""
        check_count("num_tasks", num_tasks)
        check_count("k_support", k_support)
        check_count("k_query", k_query)
        check_cpu_generator(generator)
        check_float_dtype(dtype)
        amplitude = _uniform(self.amplitude, (num_tasks,), generator, dtype)
        phase = _uniform(self.phase, (num_tasks,), generator, dtype)
        x = _uniform(self.x_range, (num_tasks, k_support + k_query, 1), generator, dtype)
        return _make_batch(x[:, :k_support], x[:, k_support:], amplitude, phase).to(device)

    def make(self, amplitude, phase, x_spt, k_query: int, generator: torch.Generator,
             device=None, dtype: torch.dtype = torch.float32) -> SinusoidBatch:
        """A batch for chosen task parameters and support inputs; query inputs are drawn from ``x_range``.

        For the interactive widget where the student places the support points.  ``amplitude`` and
        ``phase`` are numbers (one task) or sequences of length T.  ``x_spt`` is a list of points,
        shape [n] (the same points for every task), or a tensor of shape [T, n, 1].  ``n`` may be 0:
        no points placed yet, so the model shows its meta-learned initialisation.
        """
        check_count("k_query", k_query)
        check_cpu_generator(generator)
        check_float_dtype(dtype)
        amplitude = torch.as_tensor(amplitude, dtype=dtype, device="cpu").reshape(-1)
        phase = torch.as_tensor(phase, dtype=dtype, device="cpu").reshape(-1)
        if len(amplitude) == 0 or len(amplitude) != len(phase):
            raise ValueError(f"amplitude and phase must give the same number of tasks (at least 1), "
                             f"got {len(amplitude)} amplitudes and {len(phase)} phases")
        num_tasks = len(amplitude)
        x_spt = torch.as_tensor(x_spt, dtype=dtype, device="cpu")
        if x_spt.dim() == 1:
            x_spt = x_spt.reshape(1, -1, 1).expand(num_tasks, -1, 1)
        elif x_spt.dim() != 3 or x_spt.shape[0] != num_tasks or x_spt.shape[2] != 1:
            raise ValueError(f"x_spt must have shape [n] or [{num_tasks}, n, 1] for {num_tasks} task(s), "
                             f"got {tuple(x_spt.shape)}")
        x_qry = _uniform(self.x_range, (num_tasks, k_query, 1), generator, dtype)
        return _make_batch(x_spt, x_qry, amplitude, phase).to(device)


def _make_batch(x_spt: Tensor, x_qry: Tensor, amplitude: Tensor, phase: Tensor) -> SinusoidBatch:
    return SinusoidBatch(x_spt, sinusoid(x_spt, amplitude, phase),
                         x_qry, sinusoid(x_qry, amplitude, phase), amplitude, phase)


def _uniform(bounds: tuple[float, float], shape: tuple[int, ...], generator: torch.Generator,
             dtype: torch.dtype) -> Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype)


def _per_task(value, x: Tensor, name: str) -> Tensor:
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if value.dim() == 0:
        return value
    if value.dim() == 1 and x.dim() >= 2 and len(value) == len(x):
        return value.reshape(-1, *[1] * (x.dim() - 1))
    raise ValueError(f"{name} must be a number, or one value per task with x of shape [T, n, 1]; "
                     f"got {name} of shape {tuple(value.shape)} and x of shape {tuple(x.shape)}")

"""The checks every meta-objective makes at its boundary, so bad input fails with a clear message.

``MAML``, ``Reptile`` and ``BlackBox`` call these before any work: the task type and the loss
it implies, the inner learning rate and step count, and the shape of a meta-batch (lecture §1:
``x_spt, y_spt, x_qry, y_qry`` with the task index first). A wrong shape that broadcasting
would quietly accept (``[K, 1]`` instead of ``[T, K, 1]``) is an error here, not a wrong number.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import Tensor

from lecture_utils.tasks import TaskBatch

LOSSES = {"regression": F.mse_loss, "classification": F.cross_entropy}
SHAPES = {"regression": ("[T, n, d] (d = 1 for sinusoids)", "[T, n, d] (d = 1 for sinusoids)"), "classification": ("[T, n, C, H, W]", "[T, n] (long)")}


def check_choice(value: str, valid: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``valid``, else a ValueError naming the choices."""
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(valid)}")
    return value


def check_inner_lr(value) -> float:
    """The inner learning rate α: a finite number > 0 (a tensor, e.g. a learned α, is passed through)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"inner_lr must be a finite number > 0 (e.g. 0.01), got {value!r}")
    return value


def check_inner_steps(value, minimum: int = 0) -> int:
    """The number of inner steps: an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"inner_steps must be an integer >= {minimum} (e.g. 1), got {value!r}")
    return int(value)


def as_task_batch(batch) -> TaskBatch:
    """The four tensors of a meta-batch by name: a ``TaskBatch``, a ``SinusoidBatch`` or a
    plain tuple ``(x_spt, y_spt, x_qry, y_qry)``."""
    if hasattr(batch, "x_spt"):
        return TaskBatch(batch.x_spt, batch.y_spt, batch.x_qry, batch.y_qry)
    if not isinstance(batch, (tuple, list)) or len(batch) < 4:
        raise ValueError("a meta-batch is (x_spt, y_spt, x_qry, y_qry), e.g. a TaskBatch; "
                         f"got {type(batch).__name__}")
    return TaskBatch(*batch[:4])


def check_batch(task: str, batch) -> TaskBatch:
    """The meta-batch as a ``TaskBatch`` after checking its shapes for ``task``.

    Regression: x and y of shape [T, n, d] (d = 1 for sinusoids). Classification: x [T, n, C, H, W], y [T, n] class
    ids (long). All four tensors hold the same number of tasks T, and each y matches its x.
    """
    batch = as_task_batch(batch)
    x_shape, y_shape = SHAPES[task]
    for name, tensor in zip(TaskBatch._fields, batch):
        if not isinstance(tensor, Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(tensor).__name__}")
        is_x = name.startswith("x")
        expected = x_shape if is_x else y_shape
        if task == "regression":
            ok = tensor.dim() == 3
        elif is_x:
            ok = tensor.dim() == 5
        else:
            ok = tensor.dim() == 2 and tensor.dtype == torch.long
        if not ok:
            hint = " (add the task dimension, e.g. x[None])" if tensor.dim() == 2 and task == "regression" else ""
            raise ValueError(f"{task} {name} must have shape {expected}, got {tuple(tensor.shape)} "
                             f"({tensor.dtype}){hint}")
    counts = {name: len(tensor) for name, tensor in zip(TaskBatch._fields, batch)}
    if len(set(counts.values())) != 1:
        raise ValueError("support and query must hold the same number of tasks T, got "
                         + ", ".join(f"{n} {c}" for n, c in counts.items()))
    for x, y, which in ((batch.x_spt, batch.y_spt, "support"), (batch.x_qry, batch.y_qry, "query")):
        if x.shape[:2] != y.shape[:2]:
            raise ValueError(f"the {which} inputs and targets differ in size: {tuple(x.shape)} and {tuple(y.shape)}")
    return batch


def check_finite_batch(batch) -> None:
    """Raise a ValueError naming the first tensor of the batch that holds NaN or inf."""
    for name, tensor in zip(TaskBatch._fields, as_task_batch(batch)):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"the task batch holds NaN or inf in {name}: the data is broken, not the "
                             "learning rates; check how the batch was made")

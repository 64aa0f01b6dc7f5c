"""Every check of what a student passes in, in one place, so bad input fails with a clear message.

The algorithms (``MAML``, ``Reptile``, ``BlackBox``), the task families and the training loop
call these before any work: the task type and the loss it implies, the inner learning rate and
step count, counts and seeds, and the shape of a meta-batch (lecture §1: ``x_spt, y_spt, x_qry,
y_qry`` with the task index first). A wrong shape that broadcasting would quietly accept
(``[K, 1]`` instead of ``[T, K, 1]``, or targets of another width than the predictions) is an
error here, not a wrong number. (Files have their own checks where they are read:
``omniglot.py`` for the archives, ``checkpoints.py`` for weights.)

This module is the ground floor: it imports nothing from the package.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import Tensor

BATCH_FIELDS = ("x_spt", "y_spt", "x_qry", "y_qry")
SHAPES = {"regression": ("[T, n, d] (d = 1 for sinusoids)", "[T, n, d] (d = 1 for sinusoids)"),
          "classification": ("[T, n, C, H, W]", "[T, n] (long)")}


# --- the two losses of the lecture, with the checks that broadcasting would skip -----------------

def mse_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``F.mse_loss`` that refuses predictions and targets of different shapes (which it would
    broadcast into a wrong number, with only a warning)."""
    if pred.shape != target.shape:
        raise ValueError(f"regression predictions have shape {tuple(pred.shape)} but the targets have "
                         f"{tuple(target.shape)}: the targets' last dimension must be the model's output "
                         f"size ({pred.shape[-1] if pred.dim() else 1})")
    return F.mse_loss(pred, target, reduction=reduction)


def cross_entropy(logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    """``F.cross_entropy`` without its ``ignore_index``: label -100 would otherwise be skipped
    silently (``check_batch`` refuses negative labels before any work)."""
    return F.cross_entropy(logits, labels, reduction=reduction, ignore_index=-(2 ** 62))


LOSSES = {"regression": mse_loss, "classification": cross_entropy}


# --- choices, numbers and counts -----------------------------------------------------------------

def check_choice(value: str, valid: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``valid``, else a ValueError naming the choices."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(valid)}")
    return value


def check_flag(value, name: str) -> bool:
    """``value`` if it is True or False (not 0/1 or a string), else a ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_inner_lr(value, name: str = "inner_lr") -> float | Tensor:
    """The inner learning rate α: a finite number > 0, or a floating tensor (a learned α) whose
    entries are all finite and > 0."""
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise ValueError(f"{name} as a tensor must be floating point, got {value.dtype}")
        with torch.no_grad():
            ok = bool(torch.isfinite(value).all() and (value > 0).all())
        if not ok:
            raise ValueError(f"{name} must be finite and > 0 everywhere (a negative α is gradient ascent), "
                             f"got {value.detach().flatten()[:4].tolist()}{'...' if value.numel() > 4 else ''}")
        return value
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (e.g. 0.01), got {value!r}")
    return value


def check_inner_lr_per_parameter(inner_lr, params: dict, adapted: list[str]) -> dict:
    """α for each parameter, as ``maml.adapt`` uses it: one number or tensor α for all (checked by
    ``check_inner_lr``), or a dict name -> α (Meta-SGD's learned step sizes) with an entry for each
    parameter in ``adapted``, each a number or a tensor of its parameter's shape (or a 0-d tensor):
    a shape that would broadcast, [40] against a [40, 1] weight, is an error, not a wrong step."""
    if not isinstance(inner_lr, dict):
        inner_lr = check_inner_lr(inner_lr)
        return {n: inner_lr for n in params}
    unknown = [n for n in inner_lr if n not in params]
    missing = [n for n in adapted if n not in inner_lr]
    if unknown or missing:
        raise ValueError("a per-parameter inner_lr is a dict with one step size per parameter, named as in params"
                         + (f"; it names {unknown}, which params does not hold" if unknown else "")
                         + (f"; it has none for {missing}" if missing else ""))
    for n, alpha in inner_lr.items():
        check_inner_lr(alpha, f"inner_lr[{n!r}]")
        if isinstance(alpha, Tensor) and alpha.dim() and alpha.shape != params[n].shape:
            raise ValueError(f"inner_lr[{n!r}] has shape {tuple(alpha.shape)} but the parameter has shape "
                             f"{tuple(params[n].shape)}: a per-parameter α has its parameter's shape (or is one number)")
    return inner_lr


def check_positive(name: str, value, example: str = "1.0") -> float:
    """A finite number > 0: a regularisation strength λ, a scale."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (e.g. {example}), got {value!r}")
    return float(value)


def check_inner_steps(value, minimum: int = 0) -> int:
    """The number of inner steps: an integer >= ``minimum``."""
    return check_count("inner_steps", value, minimum)


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an integer >= ``minimum``, else a ValueError naming ``name``.

    Used for every count a notebook passes in: tasks per batch, shots, ways, iterations, steps.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed) -> int:
    """A seed: an integer >= 0 (``torch.manual_seed`` would truncate 1.5, or reject -1 late)."""
    return check_count("seed", seed, minimum=0)


def check_task_index(i, num_tasks: int) -> int:
    """``i`` as a non-negative task index, or a ValueError naming the valid range."""
    if isinstance(i, bool) or not isinstance(i, Integral) or not -num_tasks <= i < num_tasks:
        raise ValueError(f"task index {i!r} is out of range: this batch holds {num_tasks} tasks, "
                         f"so use an integer in {-num_tasks}..{num_tasks - 1}")
    return int(i) % num_tasks


def check_cpu_generator(generator) -> torch.Generator:
    """``generator`` if it is a CPU ``torch.Generator``, else a ValueError.

    Every task family draws from a CPU generator and only then moves the batch to the device,
    so one seed gives the same tasks on the CPU, a GPU or Apple MPS.
    """
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                         f"so that one seed gives the same tasks on every device; got {generator!r}")
    return generator


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype | None:
    """None or a floating-point torch dtype (tasks hold real numbers)."""
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise ValueError(f"{name} must be a floating-point torch dtype (e.g. torch.float32 or "
                         f"torch.float64), got {dtype!r}")
    return dtype


def check_range(name: str, bounds) -> tuple[float, float]:
    """A range (low, high) of two finite numbers with low <= high, e.g. a sinusoid's amplitudes."""
    if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
            or not all(isinstance(b, Real) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
            or bounds[0] > bounds[1]):
        raise ValueError(f"{name} must be a range (low, high) of two finite numbers with low <= high, "
                         f"got {bounds!r}")
    return float(bounds[0]), float(bounds[1])


def check_split_sizes(sizes, num_characters: int, splits=("train", "val", "test")) -> list[int]:
    """Numbers of characters per split: three integers that fit, or three fractions summing to 1."""
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 3:
        raise ValueError(f"sizes must be three numbers (train, val, test), got {sizes!r}")
    if all(isinstance(size, Integral) and not isinstance(size, bool) for size in sizes):
        counts = [check_count(f"the {split} size", size, minimum=0) for split, size in zip(splits, sizes)]
        if sum(counts) > num_characters:
            raise ValueError(f"sizes {tuple(counts)} ask for {sum(counts)} characters, "
                             f"but the set has only {num_characters}: use at most {num_characters} in total")
        return counts
    if (not all(isinstance(size, Real) and 0.0 <= size <= 1.0 for size in sizes)
            or not math.isclose(sum(sizes), 1.0, abs_tol=1e-6)):
        raise ValueError(f"sizes must be fractions in [0, 1] that sum to 1, or integer numbers of "
                         f"characters; got {sizes!r}")
    val = round(sizes[1] * num_characters)
    test = min(round(sizes[2] * num_characters), num_characters - val)
    return [num_characters - val - test, val, test]


def check_distortion(shear: Tensor, scale: Tensor, rotation: Tensor) -> None:
    """Shear an angle in (-pi/2, pi/2), scale finite and > 0, rotation a finite angle (radians)."""
    if not torch.all(shear.abs() < math.pi / 2):
        raise ValueError(f"shear is an angle in radians and must lie in (-pi/2, pi/2), got {shear.unique().tolist()}")
    if not torch.all((scale > 0) & scale.isfinite()):
        raise ValueError(f"scale must be a finite number > 0, got {scale.unique().tolist()}")
    if not torch.all(rotation.isfinite()):
        raise ValueError(f"rotation must be a finite angle in radians, got {rotation.unique().tolist()}")


def check_same_task_count(**tensors: Tensor) -> int:
    """The number of tasks T that every tensor holds along dim 0, or an error listing them."""
    counts = {name: len(t) for name, t in tensors.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{', '.join(counts)} must hold the same number of tasks along dim 0, got "
                         f"{', '.join(map(str, counts.values()))}; stack the tasks as [T, n, ...]")
    return next(iter(counts.values()))


# --- the meta-batch ------------------------------------------------------------------------------

def check_model(model) -> None:
    """A torch ``nn.Module`` with parameters (the θ that MAML adapts and meta-learns)."""
    if not isinstance(model, torch.nn.Module) or next(iter(model.parameters()), None) is None:
        raise ValueError(f"model must be a torch nn.Module with parameters (e.g. SineMLP() or Conv4(5)), "
                         f"got {type(model).__name__}")


def check_params(params) -> None:
    """θ or ϕ as the inner loop takes it: a dict name -> tensor (e.g. ``parameters_of(model)``)."""
    if not isinstance(params, dict) or not all(isinstance(p, Tensor) for p in params.values()):
        raise ValueError("params must be a dict name -> tensor, e.g. parameters_of(model) or "
                         f"dict(model.named_parameters()); got {type(params).__name__}")


def check_inner_loop(model, params, loss_fn, steps, inner_lr, head_only: bool, is_head) -> tuple[int, dict]:
    """What ``maml.adapt`` is given: θ as a dict, a loss function, a step count and an α (one, or
    one per parameter); with ``head_only``, parameters that ``is_head`` picks. Returns the checked
    steps and α as a dict name -> α (the same α for every parameter when one was given)."""
    check_params(params)
    check_callable(loss_fn, "loss_fn", "torch.nn.functional.mse_loss")
    if head_only and not any(is_head(n) for n in params):
        raise ValueError(f"head_only=True adapts the parameters named 'head.*', but {type(model).__name__} "
                         "has none: name its last layer `head`, or use head_only=False")
    adapted = [n for n in params if is_head(n) or not head_only]
    return check_inner_steps(steps), check_inner_lr_per_parameter(inner_lr, params, adapted)


def check_callable(value, name: str, example: str) -> None:
    if not callable(value):
        raise ValueError(f"{name} must be a function, e.g. {example}; got {type(value).__name__}")


def check_class_ids(labels: Tensor, classes: int, name: str) -> None:
    """Class ids below the number of classes the model predicts."""
    if labels.numel() and labels.max() >= classes:
        raise ValueError(f"{name} holds class id {labels.max().item()}, but the model predicts {classes} "
                         f"classes (ids 0 .. {classes - 1}): build it for as many classes as the tasks have "
                         "(e.g. Conv4(n_way))")


def model_dtype(model) -> torch.dtype | None:
    """The floating dtype of ``model``'s first parameter (None if it has none), for ``check_batch``."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.dtype if first is not None else None


def check_batch_tuple(batch) -> None:
    """A meta-batch is (x_spt, y_spt, x_qry, y_qry): a ``TaskBatch``, a ``SinusoidBatch`` or a tuple."""
    if not hasattr(batch, "x_spt") and (not isinstance(batch, (tuple, list)) or len(batch) < 4):
        raise ValueError("a meta-batch is (x_spt, y_spt, x_qry, y_qry), e.g. a TaskBatch; "
                         f"got {type(batch).__name__}")


def check_batch(task: str, batch, dtype: torch.dtype | None = None):
    """``batch`` (a ``TaskBatch``) after checking it for ``task``; ``dtype`` is the model's.

    Regression: x and y of shape [T, n, d] (d = 1 for sinusoids), floating point. Classification:
    x [T, n, C, H, W] floating point, y [T, n] class ids (long, >= 0). All four tensors hold the
    same number of tasks T >= 1, every set at least one example, and each y matches its x.
    With ``dtype``, floating inputs must have the model's dtype.
    """
    x_shape, y_shape = SHAPES[task]
    for name, tensor in zip(BATCH_FIELDS, batch):
        if not isinstance(tensor, Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(tensor).__name__}")
        is_x = name.startswith("x")
        if task == "regression":
            ok = tensor.dim() == 3
        elif is_x:
            ok = tensor.dim() == 5
        else:
            ok = tensor.dim() == 2 and tensor.dtype == torch.long
        if not ok:
            raise ValueError(f"{task} {name} must have shape {x_shape if is_x else y_shape}, got "
                             f"{tuple(tensor.shape)} ({tensor.dtype}){_shape_hint(task, name, tensor, batch)}")
        if (is_x or task == "regression") and not tensor.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {tensor.dtype}: convert it, e.g. "
                             f"{name}.float() (images as uint8 0..255: {name}.float() / 255)")
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            raise ValueError(f"{name} is {tensor.dtype} but the model computes in {dtype}: convert the batch "
                             f"(e.g. batch.to(torch.device('cpu')) then tensors .to({dtype})) or the model "
                             f"(model.to({tensor.dtype}))")
    counts = {name: len(tensor) for name, tensor in zip(BATCH_FIELDS, batch)}
    if len(set(counts.values())) != 1:
        raise ValueError("support and query must hold the same number of tasks T, got "
                         + ", ".join(f"{n} {c}" for n, c in counts.items()))
    if counts["x_spt"] == 0:
        raise ValueError("the meta-batch holds no tasks (T = 0): sample at least one task")
    for x, y, which in ((batch[0], batch[1], "support"), (batch[2], batch[3], "query")):
        if x.shape[:2] != y.shape[:2]:
            raise ValueError(f"the {which} inputs and targets differ in size: {tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[1] == 0:
            raise ValueError(f"the {which} set is empty (shape {tuple(x.shape)}): every task needs at least "
                             f"one {which} example")
    if task == "regression" and batch[1].shape[-1] != batch[3].shape[-1]:
        raise ValueError(f"y_spt and y_qry must have the same last dimension, got {tuple(batch[1].shape)} "
                         f"and {tuple(batch[3].shape)}")
    if task == "classification":
        for name, labels in (("y_spt", batch[1]), ("y_qry", batch[3])):
            if labels.numel() and labels.min() < 0:
                raise ValueError(f"{name} holds a negative class id ({labels.min().item()}); class ids are "
                                 "0 .. n_way - 1")
    return batch


def _shape_hint(task: str, name: str, tensor: Tensor, batch) -> str:
    """The usual fix for a regression tensor with one dimension too few."""
    if task != "regression" or tensor.dim() != 2:
        return ""
    x = batch[0] if name.endswith("spt") else batch[2]
    if name.startswith("y") and isinstance(x, Tensor) and x.dim() == 3 and x.shape[:2] == tensor.shape:
        return f" (add the output dimension: {name}[..., None])"
    return f" (add the task dimension: {name}[None])"


def check_finite_batch(batch) -> None:
    """Raise a ValueError naming the first tensor of the batch that holds NaN or inf."""
    for name, tensor in zip(BATCH_FIELDS, batch):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"the task batch holds NaN or inf in {name}: the data is broken, not the "
                             "learning rates; check how the batch was made")

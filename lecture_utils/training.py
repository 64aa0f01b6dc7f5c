"""The meta-training loop every notebook uses, and evaluation with confidence intervals.

It is Pseudo-code 2 of the lecture (§1) with bookkeeping around it::

    meta_optim = Adam(θ, lr=β)
    for batch in tasks:
        meta_optim.zero_grad()
        qry_loss = algorithm.objective(model, batch)   # inner loop inside
        qry_loss.backward()
        meta_optim.step()

``algorithm`` is any of ``MAML`` (all three approximations), ``Reptile`` or ``BlackBox``: each
has ``objective(model, batch) -> (loss, query predictions)`` whose θ-gradient is its
meta-gradient.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lecture_utils.tasks import as_task_batch
from lecture_utils.validation import check_count, check_finite_batch, check_seed

EXPLOSION = 1e3  # warn when the meta-loss grows this many times above its first value


@dataclass
class History:
    """What the loop measured: meta-train metrics every step, meta-validation every few."""

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


def query_metrics(task: str, preds: Tensor, y_qry: Tensor) -> tuple[Tensor, Tensor | None]:
    """Per-task query loss [T] and, for classification, per-task accuracy [T]."""
    if task == "regression":
        return ((preds - y_qry) ** 2).flatten(1).mean(1), None
    losses = F.cross_entropy(preds.flatten(0, 1), y_qry.flatten(), reduction="none").view(y_qry.shape)
    return losses.mean(1), (preds.argmax(-1) == y_qry).float().mean(1)


def learning_rates(algorithm, meta_lr: float | None = None) -> str:
    inner = getattr(algorithm, "inner_lr", None)
    rates = ([] if meta_lr is None else [f"meta lr {meta_lr:g}"]) + ([] if inner is None else [f"inner lr {inner:g}"])
    return ", ".join(rates) or "no learning rate"


def blame_non_finite(batch, what: str, algorithm, meta_lr: float | None = None) -> None:
    """Raise the error for a NaN or infinite ``what``: the batch's fault if it holds NaN or
    inf (checked first), else the learning rates'."""
    check_finite_batch(batch)
    raise FloatingPointError(f"{what} ({learning_rates(algorithm, meta_lr)}); the learning rates are "
                             "too large for this model: lower them (and retrain)")


def meta_train(model: nn.Module, algorithm, sample_batch: Callable[[torch.Generator], tuple],
               iterations: int, meta_lr: float = 1e-3, *, seed: int = 0,
               validation: Callable[[], tuple[float, float | None]] | None = None,
               val_every: int = 100, progress: bool = True, desc: str = "meta-train",
               position: int | None = None) -> History:
    """Meta-train ``model`` with ``algorithm`` for ``iterations`` outer steps (Adam, lr β = meta_lr).

    ``sample_batch(generator)`` returns a meta-batch of tasks on the model's device;
    ``validation()`` returns (mean loss, mean accuracy or None) on held-out tasks.
    A loss that turns NaN or infinite stops training with an error naming the step and the
    learning rates, instead of silently filling the model with NaN. ``position`` is the row of the
    progress bar when several bars are shown at once (``python -m lecture_utils.retrain``).
    """
    iterations = check_count("iterations", iterations, minimum=0)
    val_every = check_count("val_every", val_every)
    seed = check_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    meta_optim = torch.optim.Adam(model.parameters(), lr=meta_lr)
    history = History()
    first_loss = None
    bar = tqdm(range(1, iterations + 1), desc=desc, disable=not progress, leave=False, position=position)
    for step in bar:
        batch = sample_batch(generator)
        meta_optim.zero_grad()
        loss, preds = algorithm.objective(model, batch)
        value = loss.item()
        if not math.isfinite(value):
            blame_non_finite(batch, f"the meta-loss became {value} at step {step}", algorithm, meta_lr)
        if first_loss is None:
            first_loss = value
        elif value > EXPLOSION * abs(first_loss) > 0:
            warnings.warn(f"the meta-loss grew from {first_loss:.3g} to {value:.3g} by step {step} "
                          f"({learning_rates(algorithm, meta_lr)}): training is diverging; lower the "
                          "learning rates", RuntimeWarning, stacklevel=2)
            first_loss = math.inf  # warn once
        loss.backward()
        meta_optim.step()
        with torch.no_grad():
            task_loss, task_acc = query_metrics(algorithm.task, preds, as_task_batch(batch).y_qry)
        history.step.append(step)
        history.train_loss.append(task_loss.mean().item())
        history.train_acc.append(math.nan if task_acc is None else task_acc.mean().item())
        if validation is not None and (step % val_every == 0 or step == iterations):
            val_loss, val_acc = validation()
            history.val_step.append(step)
            history.val_loss.append(val_loss)
            history.val_acc.append(math.nan if val_acc is None else val_acc)
            bar.set_postfix(val_loss=f"{val_loss:.3f}")
    return history


def evaluate(model: nn.Module, algorithm, batches, steps: int | None = None, *,
             allow_non_finite: bool = False) -> tuple[Tensor, Tensor | None]:
    """Per-task query loss and accuracy over held-out meta-batches, after adaptation with
    ``steps`` inner steps (the training value when None). Returns tensors of shape [tasks].

    Non-finite predictions raise an error naming the cause, unless ``allow_non_finite`` is True:
    for studies far outside the training distribution, where an inner loop that diverges on some
    tasks is the measurement (their losses come back as inf or NaN, to be counted by the caller).
    For several step counts, ``evaluate_steps`` adapts once instead of once per count."""
    scores = _Scores()
    for batch in batches:
        with torch.no_grad():  # torch.func.grad in the inner loop still differentiates
            preds = algorithm.predict(model, batch, steps=steps)
        scores.add(algorithm, batch, preds, allow_non_finite)
    return scores.result()


def evaluate_steps(model: nn.Module, algorithm, batches, steps=(1, 10), *,
                   allow_non_finite: bool = False) -> dict[int, tuple[Tensor, Tensor | None]]:
    """``evaluate`` after each step count in ``steps`` from one inner loop per task:
    ``{steps: (losses [tasks], accuracies [tasks] or None)}``, the same numbers as calling
    ``evaluate(..., steps=s)`` for each ``s``, at the cost of the largest count alone.
    ``batches`` must be a list (it is read once per batch, all counts at a time). An algorithm
    without an inner loop (``BlackBox``) is evaluated once per count with ``evaluate``."""
    steps = list(dict.fromkeys(steps))
    if not steps:
        raise ValueError("evaluate_steps needs at least one step count, e.g. steps=(1, 10)")
    if not hasattr(algorithm, "predict_steps"):
        return {s: evaluate(model, algorithm, batches, s, allow_non_finite=allow_non_finite) for s in steps}
    scores = {s: _Scores() for s in steps}
    for batch in batches:
        for s, preds in zip(steps, algorithm.predict_steps(model, batch, steps)):
            scores[s].add(algorithm, batch, preds, allow_non_finite)
    return {s: scores[s].result() for s in steps}


class _Scores:
    """Per-task query losses and accuracies, gathered batch by batch."""

    def __init__(self):
        self.losses, self.accs = [], []

    def add(self, algorithm, batch, preds: Tensor, allow_non_finite: bool) -> None:
        if not allow_non_finite and not torch.isfinite(preds).all():
            blame_non_finite(batch, "the query predictions after adaptation are NaN or infinite", algorithm)
        task_loss, task_acc = query_metrics(algorithm.task, preds.detach(), as_task_batch(batch).y_qry)
        self.losses.append(task_loss)
        if task_acc is not None:
            self.accs.append(task_acc)

    def result(self) -> tuple[Tensor, Tensor | None]:
        if not self.losses:
            raise ValueError("no held-out batches to evaluate: pass a non-empty list of meta-batches, "
                             "e.g. [sample(generator, 50)]")
        return torch.cat(self.losses).cpu(), (torch.cat(self.accs).cpu() if self.accs else None)


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and the half-width of its 95% normal confidence interval (1.96 standard errors)."""
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    if values.numel() < 2:
        raise ValueError("a confidence interval needs at least two values")
    return values.mean().item(), 1.96 * values.std().item() / math.sqrt(values.numel())

"""MAML and its two cheap approximations: one inner loop, one meta-objective.

Lecture §1 (algorithm overview), in the pseudo-code's own names::

    for x_spt, y_spt, x_qry, y_qry in tasks:
        spt_loss = loss(y_spt, f(x_spt, θ))
        ϕ_i = θ - α * grad(spt_loss, θ)          # adapt()
        qry_loss = loss(y_qry, f(x_qry, ϕ_i))     # MAML.query()
    θ = θ - β * grad(mean qry_loss, θ)            # MAML.objective(), then the outer optimiser

Lecture §2 gives the two remedies for the cost of differentiating through ``grad``:

- ``approx="first_order"``: treat dϕ_i/dθ as I, i.e. cut the graph of the inner gradient;
- ``approx="head_only"``: adapt only the last layer (ANIL); the body still learns in the
  outer loop.

The inner gradient is ``torch.func.grad``. It keeps the graph of the gradient, as
``torch.autograd.grad(..., create_graph=True)`` does (Appendix A), and, unlike
``autograd.grad``, it also works under ``torch.func.vmap``, which runs all tasks of a meta-batch
as one batched computation instead of a Python loop. Computing the inner gradient under
``torch.no_grad()`` (no graph for the outer pass, as ``create_graph=False``; ``detach()`` on it
gives the same numbers at the cost of building that graph first) is the first-order
approximation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from lecture_utils.models import HEAD, Conv4, SineMLP, forward_tasks, is_head, parameters_of
from lecture_utils.validation import LOSSES, check_batch, check_choice, check_inner_lr, check_inner_steps

APPROXIMATIONS = ("second_order", "first_order", "head_only")
BATCHINGS = ("auto", "vmap", "loop", "expand")
BODY_THEN_HEAD = (SineMLP, Conv4)  # models whose forward is exactly head(body(x))
__all__ = ["APPROXIMATIONS", "LOSSES", "MAML", "adapt", "adapt_tasks", "check_choice", "choose_batching", "over_tasks", "per_task_loss"]


def adapt(model: nn.Module, params: dict[str, Tensor], x_spt: Tensor, y_spt: Tensor, *,
          loss_fn, steps: int = 1, inner_lr: float = 0.01, approx: str = "second_order") -> dict[str, Tensor]:
    """The inner loop: ``steps`` gradient steps on the support set, from θ to ϕ_i.

    ``approx`` chooses what the outer gradient will see:
    ``second_order`` keeps dϕ/dθ = I - α·H (the exact MAML meta-gradient),
    ``first_order`` treats dϕ/dθ as I, ``head_only`` adapts only the head parameters.

    Two shortcuts give the same numbers for less work. First-order computes the inner gradient
    under ``torch.no_grad()``: no graph is built for the outer pass only to be cut, and
    ϕ_i = fast - α·g still carries the graph from ``fast`` back to θ. Head-only, for a model
    whose output is ``head(body(x))`` (``SineMLP``, ``Conv4``), runs the body once per task and
    takes the inner steps on the head alone, since the body's weights do not move.
    """
    check_choice(approx, APPROXIMATIONS, "approximation")
    steps = check_inner_steps(steps)
    inner_lr = check_inner_lr(inner_lr)
    if approx == "head_only" and steps > 0 and type(model) in BODY_THEN_HEAD:
        adapted_head = _adapt_head(model, params, x_spt, y_spt, loss_fn, steps, inner_lr)
        if adapted_head is not None:
            return {**params, **adapted_head}
    adapted = [n for n in params if approx != "head_only" or is_head(n)]

    def support_loss(fast: dict[str, Tensor], frozen: dict[str, Tensor]) -> Tensor:
        # spt_loss = loss(y_spt, f(x_spt, θ))
        return loss_fn(functional_call(model, {**frozen, **fast}, (x_spt,)), y_spt)

    phi = dict(params)                                              # ϕ_i starts at θ
    for _ in range(steps):
        fast = {n: phi[n] for n in adapted}
        frozen = {n: p for n, p in phi.items() if n not in fast}
        if approx == "first_order":
            with torch.no_grad():                                   # create_graph=False: dϕ/dθ = I
                grads = grad(support_loss)(fast, frozen)
        else:
            grads = grad(support_loss)(fast, frozen)                # grad(spt_loss, θ), graph kept
        phi.update({n: fast[n] - inner_lr * grads[n] for n in adapted})  # ϕ_i = θ - α * grad
    return phi


def _adapt_head(model, params, x_spt, y_spt, loss_fn, steps, inner_lr) -> dict[str, Tensor] | None:
    """Head-only inner loop on the body's features, computed once (with θ's body, so the outer
    gradient still reaches the body). None when the features do not fit the head: the generic
    path then runs the full model, whose forward names the problem."""
    body = {n[len("body."):]: p for n, p in params.items() if n.startswith("body.")}
    head = {n[len(HEAD):]: p for n, p in params.items() if is_head(n)}
    if len(body) + len(head) != len(params):
        return None
    features = functional_call(model.body, body, (x_spt,))
    if features.dim() != 2 or features.shape[-1] != model.head.in_features:
        return None

    def support_loss(fast: dict[str, Tensor]) -> Tensor:
        return loss_fn(functional_call(model.head, fast, (features,)), y_spt)

    for _ in range(steps):
        grads = grad(support_loss)(head)                            # graph kept, as second order
        head = {n: head[n] - inner_lr * grads[n] for n in head}
    return {HEAD + n: w for n, w in head.items()}


def adapt_tasks(model: nn.Module, params: dict[str, Tensor], x_spt: Tensor, y_spt: Tensor, *,
                loss_fn, steps: int = 1, inner_lr: float = 0.01, approx: str = "second_order") -> dict[str, Tensor]:
    """``adapt`` for all T tasks at once (``batching="expand"``): ϕ_i stacked as name -> [T, ...].

    θ is expanded into one view per task. Each inner step runs the T support losses as one
    batched forward pass (``models.forward_tasks``: batched matrix products for the MLP, vmap
    otherwise) and takes a single ``torch.autograd.grad`` of their sum: task i's loss
    depends on its own copy only, so copy i receives task i's gradient, the same ϕ_i as ``adapt``
    gives one task at a time. ``create_graph=True`` keeps dϕ/dθ for second order; first order
    takes the gradient without it (dϕ/dθ = I); head-only differentiates the head's copies only.
    """
    check_choice(approx, APPROXIMATIONS, "approximation")
    steps = check_inner_steps(steps)
    inner_lr = check_inner_lr(inner_lr)
    # Under torch.no_grad (evaluation) the inner steps still need gradients, but no graph for θ.
    keep_graph = approx != "first_order" and torch.is_grad_enabled()
    adapted = [n for n in params if approx != "head_only" or is_head(n)]

    with torch.enable_grad():
        phi = {n: (p if p.requires_grad or n not in adapted else p.detach().requires_grad_()).expand(len(x_spt), *p.shape)
               for n, p in params.items()}                              # ϕ_i starts at θ
        for _ in range(steps):
            losses = per_task_loss(loss_fn, forward_tasks(model, phi, x_spt), y_spt)  # spt_loss of each task: [T]
            grads = torch.autograd.grad(losses.sum(), [phi[n] for n in adapted], create_graph=keep_graph)
            phi.update({n: phi[n] - inner_lr * g for n, g in zip(adapted, grads)})  # ϕ_i = θ - α * grad
    return phi


def per_task_loss(loss_fn, pred: Tensor, y: Tensor) -> Tensor:
    """``loss_fn`` of each task, [T]: predictions and targets [T, n, ...], each task's loss the mean
    over its own n examples, as ``loss_fn(pred[i], y[i])`` gives it."""
    return loss_fn(pred.flatten(0, 1), y.flatten(0, 1), reduction="none").view(len(pred), -1).mean(1)


def choose_batching(model: nn.Module, batching: str) -> str:
    """``auto``: on a GPU, vmap for every model (one batched kernel beats many small ones); on the
    CPU, ``expand`` for the MLP and the per-task loop for convolutional nets, whose time goes
    into the convolution and batch-norm arithmetic rather than into Python (measured by
    ``benchmarks/meta_gradient.py`` on 1 CPU thread: for the sinusoid MLP expand was 11.1x the
    per-task loop at 1 inner step and 13.4x at 5, vmap 6.5x and 6.6x in the same run; for Conv4
    every batched form is slower than the loop)."""
    if batching != "auto":
        return batching
    if any(p.is_cuda for p in model.parameters()):
        return "vmap"
    return "loop" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "expand"


def over_tasks(model: nn.Module, batching: str, one_task, *tensors: Tensor):
    """``one_task`` applied to each task (the leading dimension of ``tensors``), its outputs
    stacked along a new task dimension: one batched computation (vmap) or a Python loop.
    A tensor argument may also be a dict name -> [T, ...] (e.g. adapted weights ϕ_i).
    ``expand`` batches the whole meta-objective (``MAML.objective``); anything else it is asked to
    batch (test-time predictions, Reptile's inner SGD) keeps no outer graph and runs under vmap."""
    if choose_batching(model, batching) in ("vmap", "expand"):
        return vmap(one_task, randomness="error")(*tensors)
    tasks = len(next(iter(tensors[0].values())) if isinstance(tensors[0], dict) else tensors[0])
    return _stack([one_task(*(_task(t, i) for t in tensors)) for i in range(tasks)])


def _task(tensors, i: int):
    """Task ``i`` of a stacked tensor, or of each tensor in a dict name -> [T, ...]."""
    return {k: t[i] for k, t in tensors.items()} if isinstance(tensors, dict) else tensors[i]


def _stack(outputs: list):
    first = outputs[0]
    if isinstance(first, dict):
        return {k: torch.stack([o[k] for o in outputs]) for k in first}
    if isinstance(first, tuple):
        return tuple(_stack([o[i] for o in outputs]) for i in range(len(first)))
    return torch.stack(outputs)


class InnerLoop:
    """What MAML and Reptile share: the checks of their settings, the loss of their task
    type, and the checked meta-batch (fields ``task``, ``inner_lr``, ``inner_steps`` and
    ``batching`` are the dataclass's own)."""

    min_inner_steps = 0

    def _check_settings(self) -> None:
        check_choice(self.task, tuple(LOSSES), "task type")
        check_choice(self.batching, BATCHINGS, "batching")
        check_inner_lr(self.inner_lr)
        check_inner_steps(self.inner_steps, self.min_inner_steps)

    @property
    def loss_fn(self):
        return LOSSES[self.task]

    def check_batch(self, batch):
        return check_batch(self.task, batch)

    def predict(self, model: nn.Module, batch, steps: int | None = None) -> Tensor:
        """Query predictions [T, Q, ...] after adapting on each task's support set (``steps``,
        default ``inner_steps``): what ``training.evaluate`` scores."""
        return self.predict_steps(model, batch, [steps])[0]

    def predict_steps(self, model: nn.Module, batch, steps) -> list[Tensor]:
        """Query predictions after each step count in ``steps`` (e.g. ``(1, 3, 10)``; None is
        ``inner_steps``), in that order, from one inner loop per task: adapting from 3 steps' ϕ_i by 7 more steps gives
        the same ϕ_i as 10 steps from θ, so no step is taken twice. Test time only: gradients
        do not flow to θ (Reptile adapts on the support set alone, as ``predict`` does)."""
        batch = self.check_batch(batch)
        counts = [self.inner_steps if s is None else check_inner_steps(s) for s in steps]
        ordered = sorted(set(counts))
        params = {n: p.detach() for n, p in parameters_of(model).items()}

        def one_task(x_spt, y_spt, x_qry):
            phi, done, preds = params, 0, []
            for count in ordered:
                phi = self.adapt(model, phi, x_spt, y_spt, count - done) if count > done else phi
                done = count
                preds.append(functional_call(model, phi, (x_qry,)))
            return tuple(preds)

        with torch.no_grad():
            preds = over_tasks(model, self.batching, one_task, batch.x_spt, batch.y_spt, batch.x_qry)
        return [preds[ordered.index(c)] for c in counts]


@dataclass(frozen=True)
class MAML(InnerLoop):
    """MAML (§1) or one of its approximations (§2) as a meta-objective over a batch of tasks.

    ``objective(model, batch)`` returns the mean query loss over the tasks, whose gradient with
    respect to θ is the meta-gradient, and the query predictions ``[T, Q, ...]``. ``batching``
    is ``"vmap"`` (all tasks as one batched computation, each adapting with ``torch.func.grad``),
    ``"expand"`` (θ copied per task, one ``autograd.grad`` for all tasks: ``adapt_tasks``),
    ``"loop"`` (a Python loop over tasks) or ``"auto"`` (the fastest for the model and device, as
    measured by ``benchmarks/meta_gradient.py``). All give the same meta-gradient.
    """

    task: str = "regression"
    inner_lr: float = 0.01
    inner_steps: int = 1
    approx: str = "second_order"
    batching: str = "auto"

    def __post_init__(self):
        self._check_settings()
        check_choice(self.approx, APPROXIMATIONS, "approximation")

    def adapt(self, model, params, x_spt, y_spt, steps: int | None = None):
        """ϕ_i for one task (``steps`` overrides the training value, e.g. at test time)."""
        return adapt(model, params, x_spt, y_spt, loss_fn=self.loss_fn, inner_lr=self.inner_lr,
                     steps=self.inner_steps if steps is None else steps, approx=self.approx)

    def query(self, model, params, x_spt, y_spt, x_qry, y_qry, steps: int | None = None):
        """Adapt on one task's support set; return its query loss and query predictions."""
        return self.query_loss(model, self.adapt(model, params, x_spt, y_spt, steps), x_qry, y_qry)

    def query_loss(self, model, phi, x_qry, y_qry):
        """One task's query loss and query predictions with its adapted weights ϕ_i."""
        pred = functional_call(model, phi, (x_qry,))                # f(x_qry, ϕ_i)
        return self.loss_fn(pred, y_qry), pred                      # qry_loss = loss(y_qry, ...)

    def objective(self, model: nn.Module, batch, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """Mean query loss over the meta-batch (its θ-gradient is the meta-gradient)."""
        batch = self.check_batch(batch)
        params = parameters_of(model)
        if choose_batching(model, self.batching) == "expand":
            phi = adapt_tasks(model, params, batch.x_spt, batch.y_spt, loss_fn=self.loss_fn, inner_lr=self.inner_lr,
                              steps=self.inner_steps if steps is None else steps, approx=self.approx)
            preds = forward_tasks(model, phi, batch.x_qry)              # f(x_qry, ϕ_i) for every task
            return per_task_loss(self.loss_fn, preds, batch.y_qry).mean(), preds

        def one_task(x_spt, y_spt, x_qry, y_qry):
            return self.query(model, params, x_spt, y_spt, x_qry, y_qry, steps)

        losses, preds = over_tasks(model, self.batching, one_task, *batch)
        return losses.mean(), preds

"""How the tasks of a meta-batch are run: the speed strategies, applied from outside the algorithm.

``MAML.task_loss`` is one task of Pseudo-code 1. The meta-objective is the mean of that over
the T tasks of a meta-batch, and there are several ways to compute the T of them, all with the
same numbers (tests/test_batching.py compares each with the plain loop in float64):

- ``"loop"``: a Python loop over tasks, exactly as the pseudo-code reads;
- ``"vmap"``: ``torch.func.vmap`` over the per-task function, the way functorch's MAML example
  batches it: one batched computation instead of T small ones;
- ``"expand"``: θ expanded into one copy per task, one batched forward pass of all T support
  sets, and one ``autograd.grad`` of the summed support losses: copy i receives task i's gradient.
  For the sinusoid MLP the forward pass is three batched matrix products (``mlp_forward_tasks``);
- head only, body once: with ``head_only`` the body's weights do not move in the inner loop, so
  its features are computed once per task and the inner loop runs on the head alone.

``"auto"`` picks by model and device, from what ``benchmarks/meta_gradient.py`` measured: on
one CPU thread ``expand`` was 11.1x the per-task loop for the MLP at 1 inner step and 13.4x at 5
(vmap 6.5x and 6.6x), while for Conv4 every batched form was slower than the loop; on a GPU
vmap (one batched kernel beats many small ones).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from lecture_utils.models import Conv4, SineMLP, is_head

BATCHINGS = ("auto", "vmap", "loop", "expand")
BODY_THEN_HEAD = (SineMLP, Conv4)  # models whose forward is exactly head(body(x))


def choose_batching(model: nn.Module, batching: str) -> str:
    """The strategy ``batching`` names; for ``"auto"`` vmap on a GPU, and on the CPU ``expand``
    for the MLP and the per-task loop for convolutional nets (measured: see the module docstring)."""
    if batching != "auto":
        return batching
    if any(p.is_cuda for p in model.parameters()):
        return "vmap"
    return "loop" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "expand"


def task_losses(algorithm, model: nn.Module, params: dict[str, Tensor], batch, steps: int):
    """Each task's query loss [T] and query predictions [T, Q, ...] for ``algorithm`` (a ``MAML``),
    computed with the strategy its ``batching`` chooses."""
    if choose_batching(model, algorithm.batching) == "expand":
        phi = adapt_tasks(algorithm, model, params, batch.x_spt, batch.y_spt, steps)
        preds = forward_tasks(model, phi, batch.x_qry)                       # f(x_qry, ϕ_i) for every task
        return per_task_loss(algorithm.loss_fn, preds, batch.y_qry), preds
    adapt_one = task_adapter(algorithm, model)

    def one_task(x_spt, y_spt, x_qry, y_qry):
        phi = adapt_one(params, x_spt, y_spt, steps)
        pred = functional_call(model, phi, (x_qry,))
        return algorithm.loss_fn(pred, y_qry), pred

    return over_tasks(model, algorithm.batching, one_task, *batch)


def predict_steps(algorithm, model: nn.Module, batch, counts: list[int]) -> list[Tensor]:
    """Query predictions after each inner-step count in ``counts``, from one inner loop per task,
    without a graph to θ (test time). Reptile adapts on the support set alone here, as MAML does."""
    ordered = sorted(set(counts))
    params = {n: p.detach() for n, p in model.named_parameters()}
    adapt_one = task_adapter(algorithm, model)

    def one_task(x_spt, y_spt, x_qry):
        phi, done, preds = params, 0, []
        for count in ordered:
            phi = adapt_one(phi, x_spt, y_spt, count - done) if count > done else phi
            done = count
            preds.append(functional_call(model, phi, (x_qry,)))
        return tuple(preds)

    with torch.no_grad():
        preds = over_tasks(model, algorithm.batching, one_task, batch.x_spt, batch.y_spt, batch.x_qry)
    return [preds[ordered.index(c)] for c in counts]


def over_tasks(model: nn.Module, batching: str, one_task, *tensors):
    """``one_task`` applied to each task (the leading dimension of ``tensors``), its outputs
    stacked along a new task dimension: vmap, or a Python loop. A tensor argument may also be a
    dict name -> [T, ...] (e.g. adapted weights ϕ_i). ``expand`` batches only the whole
    meta-objective (``task_losses``); whatever else it is asked to batch runs under vmap."""
    if choose_batching(model, batching) in ("vmap", "expand"):
        return vmap(one_task, randomness="error")(*tensors)
    first = tensors[0]
    tasks = len(next(iter(first.values())) if isinstance(first, dict) else first)
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


# --- head only, body once ------------------------------------------------------------------------

class _HeadOf(nn.Module):
    """The head of a body-then-head model as a model of its own, its parameters still named
    ``head.*``, so that the inner loop (``algorithm.adapt``) runs on it unchanged."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.head = model.head

    def forward(self, features: Tensor) -> Tensor:
        return self.head(features)


def task_adapter(algorithm, model: nn.Module):
    """``adapt(params, x_spt, y_spt, steps) -> ϕ_i`` for one task: ``algorithm.adapt``, or, for
    head-only MAML on a model whose forward is exactly ``head(body(x))``, the same inner loop on the
    head alone after one pass of the body (its weights do not move; computed with θ's body, so the
    outer gradient still reaches it)."""
    if not (getattr(algorithm, "head_only", False) and type(model) in BODY_THEN_HEAD):
        return lambda params, x_spt, y_spt, steps: algorithm.adapt(model, params, x_spt, y_spt, steps)
    head_model = _HeadOf(model)

    def adapt_on_features(params, x_spt, y_spt, steps):
        body = {n[len("body."):]: p for n, p in params.items() if n.startswith("body.")}
        head = {n: p for n, p in params.items() if is_head(n)}
        if steps == 0 or len(body) + len(head) != len(params):
            return algorithm.adapt(model, params, x_spt, y_spt, steps)
        features = functional_call(model.body, body, (x_spt,))
        if features.dim() != 2 or features.shape[-1] != model.head.in_features:
            return algorithm.adapt(model, params, x_spt, y_spt, steps)   # the full forward names the problem
        return {**params, **algorithm.adapt(head_model, head, features, y_spt, steps)}

    return adapt_on_features


# --- expand: all tasks' inner loops as one batched computation -----------------------------------

def adapt_tasks(algorithm, model: nn.Module, params: dict[str, Tensor], x_spt: Tensor, y_spt: Tensor,
                steps: int) -> dict[str, Tensor]:
    """``maml.adapt`` for all T tasks at once: ϕ_i stacked as name -> [T, ...].

    θ is expanded into one view per task. Each inner step runs the T support losses as one
    batched forward pass (``forward_tasks``) and takes one ``torch.autograd.grad`` of their sum:
    task i's loss depends on its own copy only, so copy i receives task i's gradient.
    ``create_graph`` is on for second order (dϕ/dθ kept) and off for first order (dϕ/dθ = I);
    head-only differentiates the head's copies only.
    """
    keep_graph = not algorithm.first_order and torch.is_grad_enabled()  # no graph under torch.no_grad
    adapted = [n for n in params if is_head(n) or not algorithm.head_only]
    if not adapted:
        raise ValueError(f"head_only=True adapts the parameters named 'head.*', but {type(model).__name__} has none")
    with torch.enable_grad():
        phi = {n: (p if p.requires_grad or n not in adapted else p.detach().requires_grad_()).expand(len(x_spt), *p.shape)
               for n, p in params.items()}                                # ϕ_i starts at θ
        for _ in range(steps):
            losses = per_task_loss(algorithm.loss_fn, forward_tasks(model, phi, x_spt), y_spt)  # [T]
            grads = torch.autograd.grad(losses.sum(), [phi[n] for n in adapted], create_graph=keep_graph)
            phi.update({n: phi[n] - algorithm.inner_lr * g for n, g in zip(adapted, grads)})
    return phi


def per_task_loss(loss_fn, pred: Tensor, y: Tensor) -> Tensor:
    """``loss_fn`` of each task, [T]: predictions and targets [T, n, ...], each task's loss the mean
    over its own n examples, as ``loss_fn(pred[i], y[i])`` gives it."""
    return loss_fn(pred.flatten(0, 1), y.flatten(0, 1), reduction="none").view(len(pred), -1).mean(1)


def forward_tasks(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """f(x_i; ϕ_i) for T tasks at once: ``params`` name -> [T, ...], ``x`` [T, n, ...].
    ``mlp_forward_tasks`` for exactly a ``SineMLP`` (a subclass may change ``forward``), else
    the model's forward under vmap."""
    if type(model) is SineMLP:
        model.check_input(x)
        return mlp_forward_tasks(params, x)
    return vmap(lambda p, x_i: functional_call(model, p, (x_i,)))(params, x)


def mlp_forward_tasks(params: dict[str, Tensor], x: Tensor) -> Tensor:
    """The ``SineMLP`` forward pass of T tasks, task i with its own weights: ``params`` maps each
    parameter name to [T, ...], ``x`` is [T, n, 1]. Three batched matrix products
    (``torch.baddbmm``), the arithmetic of the module's forward per task without vmap's
    per-operation cost."""
    h = x
    for layer in ("body.0", "body.2", "head"):
        weight, bias = params[f"{layer}.weight"], params[f"{layer}.bias"]
        h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))   # h @ W_i^T + b_i
        h = h.relu() if layer != "head" else h
    return h

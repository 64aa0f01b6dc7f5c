"""Every batching strategy gives the numbers of the plain per-task inner loop: vmap, expand (with
the MLP's batched matrix products), head-only on features computed once, first order without the
inner gradient's outer graph, ``evaluate_steps`` adapting incrementally, and Reptile's batched
query predictions. Each is compared in float64 with ``reference_adapt``, an independent
implementation written out here (the full model's gradient at every inner step, detached after the
fact for first order, a Python loop over tasks)."""
import pytest
import torch
from torch.func import functional_call, grad

from lecture_utils.batching import choose_batching, forward_tasks, per_task_loss
from lecture_utils.maml import MAML, adapt
from lecture_utils.models import Conv4, SineMLP, is_head, parameters_of
from lecture_utils.reptile import Reptile
from lecture_utils.training import evaluate, evaluate_steps
from tests.test_maml import VARIANTS, image_batch, regression_batch


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


def reference_adapt(model, params, x_spt, y_spt, *, loss_fn, steps, inner_lr, first_order, head_only):
    """The inner loop written with ``torch.func.grad`` of the full model at every step, the
    first-order gradient detached after it was taken with its graph."""
    adapted = [n for n in params if not head_only or is_head(n)]

    def support_loss(fast, frozen):
        return loss_fn(functional_call(model, {**frozen, **fast}, (x_spt,)), y_spt)

    phi = dict(params)
    for _ in range(steps):
        fast = {n: phi[n] for n in adapted}
        frozen = {n: p for n, p in phi.items() if n not in fast}
        grads = grad(support_loss)(fast, frozen)
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        phi.update({n: fast[n] - inner_lr * grads[n] for n in adapted})
    return phi


def reference_objective(alg, model, batch):
    """The meta-objective as a plain Python loop over tasks with ``reference_adapt``: no strategy."""
    params, losses, preds = parameters_of(model), [], []
    for x_spt, y_spt, x_qry, y_qry in zip(*batch):
        phi = reference_adapt(model, params, x_spt, y_spt, loss_fn=alg.loss_fn, inner_lr=alg.inner_lr,
                              steps=alg.inner_steps, first_order=alg.first_order, head_only=alg.head_only)
        preds.append(functional_call(model, phi, (x_qry,)))
        losses.append(alg.loss_fn(preds[-1], y_qry))
    return torch.stack(losses).mean(), torch.stack(preds)


def case(net, tasks=3):
    if net == "mlp":
        return SineMLP(), regression_batch(tasks=tasks), dict(inner_lr=0.05, inner_steps=3)
    return Conv4(3, hidden=6), image_batch(tasks=tasks), dict(task="classification", inner_lr=0.4, inner_steps=2)


def meta_grad(alg, model, batch, objective=None):
    loss, preds = (objective or type(alg).objective)(alg, model, batch)
    return torch.autograd.grad(loss, list(model.parameters())), preds


@pytest.mark.parametrize("batching", ["vmap", "loop", "expand"])
@pytest.mark.parametrize("approx", list(VARIANTS))
@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_meta_gradient_equals_the_reference(net, approx, batching):
    model, batch, kw = case(net)
    got, got_preds = meta_grad(MAML(**VARIANTS[approx], batching=batching, **kw), model, batch)
    want, want_preds = meta_grad(MAML(**VARIANTS[approx], **kw), model, batch, reference_objective)
    torch.testing.assert_close(got_preds, want_preds, rtol=1e-10, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("steps", [0, 1, 3])
@pytest.mark.parametrize("approx", list(VARIANTS))
def test_expand_under_no_grad_matches_the_loop(approx, steps):
    """``batching="expand"`` takes its inner gradients with autograd; evaluated under
    torch.no_grad (as the shift widget does) it must still adapt, and build no graph."""
    model, batch, kw = case("mlp")
    kw["inner_steps"] = steps
    with torch.no_grad():
        got = MAML(**VARIANTS[approx], batching="expand", **kw).objective(model, batch)
    want = MAML(**VARIANTS[approx], batching="loop", **kw).objective(model, batch)
    assert not got[0].requires_grad and not got[1].requires_grad
    torch.testing.assert_close(got[0], want[0].detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got[1], want[1].detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hidden", [40, 7])
def test_sine_mlp_forward_tasks_is_the_per_task_forward(hidden):
    """``batching.mlp_forward_tasks`` (batched matrix products, what ``expand`` runs) gives, for task
    i, the module's own forward with task i's weights, also for a hidden width other than 40."""
    model = SineMLP(hidden)
    g = torch.Generator().manual_seed(3)
    params = {n: p.detach() + torch.randn(4, *p.shape, generator=g, dtype=p.dtype) for n, p in model.named_parameters()}
    x = torch.randn(4, 6, 1, generator=g, dtype=torch.float64)
    got = forward_tasks(model, params, x)
    for i in range(4):
        want = functional_call(model, {n: p[i] for n, p in params.items()}, (x[i],))
        torch.testing.assert_close(got[i], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_per_task_loss_is_the_loss_of_each_task(task):
    """``per_task_loss`` (one call for all tasks, what ``expand`` uses) equals ``loss_fn`` task by task."""
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(3, 7, 1 if task == "regression" else 5, generator=g, dtype=torch.float64)
    y = torch.randn(3, 7, 1, generator=g, dtype=torch.float64) if task == "regression" else torch.randint(5, (3, 7), generator=g)
    loss_fn = MAML(task).loss_fn
    want = torch.stack([loss_fn(pred[i], y[i]) for i in range(3)])
    torch.testing.assert_close(per_task_loss(loss_fn, pred, y), want, rtol=1e-12, atol=1e-14)


def test_auto_batching_is_expand_for_the_mlp_and_the_loop_for_conv4_on_the_cpu():
    assert choose_batching(SineMLP(), "auto") == "expand"
    assert choose_batching(Conv4(3, hidden=4), "auto") == "loop"
    assert choose_batching(SineMLP(), "vmap") == "vmap"


def test_first_order_phi_still_reaches_theta_with_identity_jacobian():
    """Computing the inner gradient under no_grad must not cut ϕ_i from θ: dϕ/dθ = I."""
    model, (xs, ys, _, _), _ = case("mlp")
    params = parameters_of(model)
    phi = adapt(model, params, xs[0], ys[0], loss_fn=MAML().loss_fn, steps=3, inner_lr=0.05, first_order=True)
    ones = torch.autograd.grad(sum(p.sum() for p in phi.values()), list(params.values()))
    assert all(torch.equal(g, torch.ones_like(g)) for g in ones)


def test_head_only_falls_back_to_the_full_model_for_a_wrong_image_size():
    model = Conv4(3, hidden=6)
    x = torch.rand(1, 3, 1, 32, 32)
    batch = (x, torch.arange(3)[None], x, torch.arange(3)[None])
    with pytest.raises(ValueError, match="28x28"):
        MAML(task="classification", head_only=True, batching="loop").objective(model, batch)


@pytest.mark.parametrize("algorithm", ["maml", "first_order", "head_only", "reptile", "pretrained"])
@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_evaluate_steps_equals_evaluate_per_step_count(net, algorithm):
    model, _, kw = case(net)
    kw.pop("inner_steps")
    alg = {"maml": MAML(**kw), "first_order": MAML(first_order=True, **kw),
           "head_only": MAML(head_only=True, **kw), "reptile": Reptile(**kw),
           "pretrained": MAML(inner_steps=0, **kw)}[algorithm]
    batches = [case(net, tasks=2)[1], case(net, tasks=3)[1]]
    steps = (5, 0, 1, None, 3)
    got = evaluate_steps(model, alg, batches, steps)
    assert list(got) == list(steps)
    for s in steps:
        want = evaluate(model, alg, batches, s)
        torch.testing.assert_close(got[s][0], want[0], rtol=1e-10, atol=1e-12)
        if want[1] is None:
            assert got[s][1] is None
        else:
            torch.testing.assert_close(got[s][1], want[1])


@pytest.mark.parametrize("batching", ["vmap", "loop"])
@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_reptile_query_predictions_equal_the_per_task_loop(net, batching):
    model, batch, kw = case(net)
    alg = Reptile(batching=batching, **kw)
    phis = alg.adapted_params(model, batch)
    want = torch.stack([functional_call(model, {n: phi[i] for n, phi in phis.items()}, (xq,))
                        for i, xq in enumerate(batch[2])])
    torch.testing.assert_close(alg.predict(model, batch), want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(alg.objective(model, batch)[1], want, rtol=1e-10, atol=1e-12)

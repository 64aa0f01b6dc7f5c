"""The algorithms behave exactly as the math of the lecture says."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lecture_utils.blackbox import BlackBox, BlackBoxLearner
from lecture_utils.maml import MAML, adapt
from lecture_utils.models import BatchStatNorm2d, Conv4, SineMLP, is_head, parameters_of
from lecture_utils.reptile import Reptile

# The approximations of §2 as MAML's flags (the last combines both remedies).
VARIANTS = {"second_order": {}, "first_order": {"first_order": True}, "head_only": {"head_only": True},
            "first_order_head_only": {"first_order": True, "head_only": True}}
APPROXES = list(VARIANTS)


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


def regression_batch(tasks=3, k=5, q=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    amp, phase = torch.rand(tasks, 1, 1, generator=g) * 4 + 1, torch.rand(tasks, 1, 1, generator=g) * 3
    x = torch.rand(tasks, k + q, 1, generator=g) * 10 - 5
    y = amp * torch.sin(x - phase)
    return x[:, :k], y[:, :k], x[:, k:], y[:, k:]


def image_batch(tasks=2, n_way=3, k=1, q=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(tasks, n_way * (k + q), 1, 28, 28, generator=g)
    labels = torch.arange(n_way).repeat_interleave(k + q).repeat(tasks, 1)
    return x[:, : n_way * k], labels[:, : n_way * k], x[:, n_way * k:], labels[:, n_way * k:]


def meta_grad(alg, model, batch):
    loss, _ = alg.objective(model, batch)
    return torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)


def finite_difference(alg, model, batch, direction, eps=1e-6):
    params = list(model.parameters())
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for p, v in zip(params, direction):
                p.add_(sign * eps * v)
        values.append(alg.objective(model, batch)[0].item())
        with torch.no_grad():
            for p, v in zip(params, direction):
                p.sub_(sign * eps * v)
    return (values[0] - values[1]) / (2 * eps)


def directional(grads, direction):
    return sum((g * v).sum() for g, v in zip(grads, direction)).item()


@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_second_order_meta_gradient_matches_finite_differences(net):
    if net == "mlp":
        model, batch, alg = SineMLP(), regression_batch(), MAML(inner_lr=0.05, inner_steps=2)
    else:
        model, batch = Conv4(3, hidden=6), image_batch()
        alg = MAML(task="classification", inner_lr=0.5, inner_steps=1)
    direction = [torch.randn_like(p) for p in model.parameters()]
    exact = directional(meta_grad(alg, model, batch), direction)
    numeric = finite_difference(alg, model, batch, direction)
    assert abs(exact - numeric) <= 1e-6 * max(1.0, abs(numeric))


def test_second_order_matches_closed_form_for_linear_regression():
    # f(x) = x·w, L(w) = mean((Xw - y)^2): grad = 2/n X^T(Xw - y), Hessian H = 2/n X^T X,
    # so the MAML meta-gradient is (I - α H_spt) ∇L_qry(ϕ) with ϕ = w - α ∇L_spt(w).
    model, alpha = nn.Linear(4, 1, bias=False), 0.1
    g = torch.Generator().manual_seed(1)
    xs, xq = torch.randn(1, 6, 4, generator=g), torch.randn(1, 9, 4, generator=g)
    ys, yq = torch.randn(1, 6, 1, generator=g), torch.randn(1, 9, 1, generator=g)
    w = model.weight.detach().T  # [4, 1]
    grad_spt = 2 / 6 * xs[0].T @ (xs[0] @ w - ys[0])
    phi = w - alpha * grad_spt
    grad_qry_at_phi = 2 / 9 * xq[0].T @ (xq[0] @ phi - yq[0])
    hessian_spt = 2 / 6 * xs[0].T @ xs[0]
    expected = (torch.eye(4) - alpha * hessian_spt) @ grad_qry_at_phi
    (got,) = meta_grad(MAML(inner_lr=alpha, inner_steps=1), model, (xs, ys, xq, yq))
    torch.testing.assert_close(got.T, expected, rtol=1e-12, atol=1e-12)
    (first,) = meta_grad(MAML(inner_lr=alpha, first_order=True), model, (xs, ys, xq, yq))
    torch.testing.assert_close(first.T, grad_qry_at_phi, rtol=1e-12, atol=1e-12)


def test_first_order_is_query_gradient_at_phi_and_create_graph_false_is_first_order():
    model, batch = SineMLP(), regression_batch(tasks=1)
    xs, ys, xq, yq = (t[0] for t in batch)
    alpha = 0.05
    first = meta_grad(MAML(inner_lr=alpha, first_order=True), model, batch)
    second = meta_grad(MAML(inner_lr=alpha), model, batch)

    phi = {n: p.detach().requires_grad_() for n, p in
           adapt(model, parameters_of(model), xs, ys, loss_fn=F.mse_loss, inner_lr=alpha).items()}
    at_phi = torch.autograd.grad(F.mse_loss(functional_call(model, phi, (xq,)), yq), list(phi.values()))
    for a, b in zip(first, at_phi):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

    # The silent bug of a popular implementation: autograd.grad without create_graph=True.
    theta = list(model.parameters())
    spt_grads = torch.autograd.grad(F.mse_loss(model(xs), ys), theta)  # create_graph=False
    fast = {n: p - alpha * g for (n, p), g in zip(model.named_parameters(), spt_grads)}
    buggy = torch.autograd.grad(F.mse_loss(functional_call(model, fast, (xq,)), yq), theta)
    for a, b in zip(buggy, first):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    gap = max((a - b).abs().max().item() for a, b in zip(buggy, second))
    assert gap > 1e-4, "without create_graph=True the (I - αH) term must be missing"


def test_a_per_parameter_inner_lr_scales_each_gradient_entry_by_its_own_step():
    """adapt with α as a dict name -> tensor of the parameter's shape (Meta-SGD's learned α):
    ϕ = θ - α ∘ ∇L_spt(θ) entry by entry; a dict holding one number everywhere is the scalar α."""
    model, batch = SineMLP(), regression_batch(tasks=1)
    xs, ys = batch[0][0], batch[1][0]
    theta = parameters_of(model)
    alphas = {n: torch.rand_like(p) * 0.1 + 0.01 for n, p in theta.items()}
    phi = adapt(model, theta, xs, ys, loss_fn=F.mse_loss, inner_lr=alphas, first_order=True)
    grads = torch.autograd.grad(F.mse_loss(model(xs), ys), list(theta.values()))
    for (n, p), g in zip(theta.items(), grads):
        torch.testing.assert_close(phi[n], p - alphas[n] * g, rtol=1e-12, atol=1e-14)
    same = adapt(model, theta, xs, ys, loss_fn=F.mse_loss, inner_lr={n: 0.05 for n in theta}, steps=2)
    scalar = adapt(model, theta, xs, ys, loss_fn=F.mse_loss, inner_lr=0.05, steps=2)
    for n in theta:
        assert torch.equal(same[n], scalar[n]), n


def test_head_only_adapts_the_head_and_still_trains_the_body():
    model, batch = SineMLP(), regression_batch()
    theta = parameters_of(model)
    phi = adapt(model, theta, batch[0][0], batch[1][0], loss_fn=F.mse_loss, steps=3,
                inner_lr=0.1, head_only=True)
    for name in theta:
        moved = not torch.equal(phi[name], theta[name])
        assert moved == is_head(name), name
    grads = dict(zip(theta, meta_grad(MAML(inner_lr=0.1, inner_steps=3, head_only=True), model, batch)))
    assert all(grads[n].abs().sum() > 0 for n in theta if not is_head(n))


def sgd_steps(model, params, x, y, steps, lr):
    params = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
    for _ in range(steps):
        grads = torch.autograd.grad(F.mse_loss(functional_call(model, params, (x,)), y), list(params.values()))
        params = {n: (p - lr * g).detach().requires_grad_() for (n, p), g in zip(params.items(), grads)}
    return params


@pytest.mark.parametrize("steps", [1, 4])
def test_reptile_update_is_epsilon_times_phi_minus_theta(steps):
    model, batch = SineMLP(), regression_batch(tasks=1)
    alg, epsilon = Reptile(inner_lr=0.02, inner_steps=steps), 0.3
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    phi = sgd_steps(model, theta, batch[0][0], batch[1][0], steps, alg.inner_lr)
    sgd = torch.optim.SGD(model.parameters(), lr=epsilon)
    sgd.zero_grad()
    alg.objective(model, batch)[0].backward()
    sgd.step()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach() - theta[name], epsilon * (phi[name] - theta[name]),
                                   rtol=1e-10, atol=1e-12)
    if steps == 1:  # one inner step: Reptile is a joint-training step on the task's loss
        model.load_state_dict(theta)
        joint = torch.autograd.grad(F.mse_loss(model(batch[0][0]), batch[1][0]), list(model.parameters()))
        for (name, p), g in zip(model.named_parameters(), joint):
            torch.testing.assert_close(epsilon * (phi[name] - theta[name]), -epsilon * alg.inner_lr * g)


@pytest.mark.parametrize("batching", ["vmap", "expand"])
@pytest.mark.parametrize("approx", APPROXES)
@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_batched_meta_gradient_equals_per_task_loop(approx, net, batching):
    if net == "mlp":
        model, batch, kw = SineMLP(), regression_batch(tasks=4), dict(inner_lr=0.05, inner_steps=2)
    else:
        model, batch, kw = Conv4(3, hidden=6), image_batch(tasks=3), dict(task="classification", inner_lr=0.4)
    batched = meta_grad(MAML(**VARIANTS[approx], batching=batching, **kw), model, batch)
    looped = meta_grad(MAML(**VARIANTS[approx], batching="loop", **kw), model, batch)
    for a, b in zip(batched, looped):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_reptile_vmap_equals_loop():
    model, batch = SineMLP(), regression_batch(tasks=4)
    a = Reptile(inner_lr=0.02, batching="vmap").direction(model, batch)
    b = Reptile(inner_lr=0.02, batching="loop").direction(model, batch)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-12)


def test_batch_norm_from_primitives_matches_torch_batch_norm():
    x = torch.randn(5, 4, 7, 7)
    ours, torchs = BatchStatNorm2d(4), nn.BatchNorm2d(4, track_running_stats=False)
    torch.testing.assert_close(ours(x), torchs(x))


def all_algorithms():
    return [
        (SineMLP, regression_batch, MAML(inner_lr=0.01)),
        (SineMLP, regression_batch, MAML(inner_lr=0.01, first_order=True)),
        (SineMLP, regression_batch, MAML(inner_lr=0.01, head_only=True)),
        (SineMLP, regression_batch, Reptile(inner_lr=0.01)),
        (BlackBoxLearner.for_sinusoid, regression_batch, BlackBox()),
        (lambda: Conv4(3, hidden=4), image_batch, MAML("classification", inner_lr=0.4)),
        (lambda: Conv4(3, hidden=4), image_batch, Reptile("classification", inner_lr=0.1, inner_steps=2)),
        (lambda: BlackBoxLearner.for_characters(3, hidden=4, width=8), image_batch, BlackBox("classification")),
    ]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_every_algorithm_runs_and_trains_on_device(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    for build, make_batch, alg in all_algorithms():
        model = build().to(device)
        batch = tuple(t.to(device) for t in make_batch())
        loss, preds = alg.objective(model, batch)
        loss.backward()
        assert preds.device.type == device and torch.isfinite(loss)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_invalid_choices_are_named():
    with pytest.raises(ValueError, match="first_order must be True or False, got 'yes'"):
        MAML(first_order="yes")
    with pytest.raises(TypeError, match="approx"):
        MAML(approx="first_order")
    with pytest.raises(ValueError, match="unknown task type"):
        Reptile(task="ranking")
    with pytest.raises(ValueError, match="inner_steps must be an integer >= 1"):
        Reptile(inner_steps=0)


def test_blackbox_predictions_do_not_depend_on_the_other_tasks_in_the_batch():
    model, (xs, ys, xq, _) = BlackBoxLearner.for_characters(3, hidden=4, width=8), image_batch(tasks=3)
    together = model(xs, ys, xq)
    alone = torch.cat([model(xs[i:i + 1], ys[i:i + 1], xq[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)

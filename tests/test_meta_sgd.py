"""Meta-SGD's meta-gradient is exact for θ and for the learned step sizes, it is MAML when every α
is the same number, and the training loop trains both (float64)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lecture_utils.maml import MAML, adapt
from lecture_utils.meta_sgd import MetaSGD, MetaSGDLearner
from lecture_utils.models import Conv4, SineMLP, parameters_of
from lecture_utils.training import evaluate, meta_train
from tests.test_maml import directional, finite_difference, image_batch, regression_batch

pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


def case(net):
    if net == "mlp":
        return MetaSGD(init_lr=0.05, inner_steps=2), SineMLP(hidden=16), regression_batch()
    return MetaSGD("classification", init_lr=0.4), Conv4(3, hidden=6), image_batch()


def spread_alphas(learner, seed=1):
    """Different α for every entry (0.5x to 1.5x the start), so a test sees each one used."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for log_lr in learner.log_lr.values():
            log_lr.add_(torch.log(0.5 + torch.rand(log_lr.shape, generator=g)))


@pytest.mark.parametrize("which", ["theta", "alpha"])
@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_meta_gradient_matches_finite_differences(net, which):
    """The directional derivative of the meta-objective along θ alone, then along log α alone."""
    alg, base, batch = case(net)
    learner = alg.learner(base)
    spread_alphas(learner)
    direction = [torch.randn_like(p) * (n.startswith("log_lr.") == (which == "alpha"))
                 for n, p in learner.named_parameters()]
    loss, _ = alg.objective(learner, batch)
    exact = directional(torch.autograd.grad(loss, list(learner.parameters())), direction)
    numeric = finite_difference(alg, learner, batch, direction)
    assert abs(exact) > 1e-3
    assert abs(exact - numeric) <= 1e-6 * max(1.0, abs(numeric))


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("net", ["mlp", "conv4"])
def test_one_alpha_everywhere_is_maml(net, first_order):
    """All α equal: MAML's loss, predictions and θ-gradient; and the α-gradients summed over every
    entry are dL/dα of MAML with that one α (times α, since the learner holds log α)."""
    alg, base, batch = case(net)
    alg = MetaSGD(alg.task, alg.init_lr, alg.inner_steps, first_order, batching="loop")
    learner = alg.learner(base)
    alpha = torch.tensor(alg.init_lr, requires_grad=True)
    maml = MAML(alg.task, inner_lr=alpha, inner_steps=alg.inner_steps, first_order=first_order, batching="loop")
    loss, preds = alg.objective(learner, batch)
    maml_loss, maml_preds = maml.objective(base, batch)
    torch.testing.assert_close(loss, maml_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(preds, maml_preds, rtol=1e-12, atol=1e-14)
    grads = dict(zip([n for n, _ in learner.named_parameters()], torch.autograd.grad(loss, list(learner.parameters()))))
    maml_grads = torch.autograd.grad(maml_loss, [*base.parameters(), alpha])
    for (n, _), g in zip(base.named_parameters(), maml_grads):
        torch.testing.assert_close(grads["net." + n], g, rtol=1e-10, atol=1e-13)
    alpha_total = sum(g.sum() for n, g in grads.items() if n.startswith("log_lr."))
    torch.testing.assert_close(alpha_total, alg.init_lr * maml_grads[-1], rtol=1e-10, atol=1e-13)


def test_first_order_gradients_written_out():
    """One step, first order, one task: the θ-gradient is ∇L_qry(ϕ), and the log α-gradient is
    -α ∘ g_spt ∘ ∇L_qry(ϕ), from ϕ = θ - α ∘ g_spt with g_spt held fixed."""
    alg = MetaSGD(init_lr=0.05, first_order=True)
    learner = alg.learner(SineMLP(hidden=16))
    spread_alphas(learner)
    batch = regression_batch(tasks=1)
    xs, ys, xq, yq = (t[0] for t in batch)
    theta, alpha = learner.split(parameters_of(learner))
    theta = {n: p.detach() for n, p in theta.items()}
    g_spt = dict(zip(theta, torch.autograd.grad(F.mse_loss(learner.net(xs), ys), list(learner.net.parameters()))))
    phi = {n: (p - alpha[n].detach() * g_spt[n]).requires_grad_() for n, p in theta.items()}
    at_phi = dict(zip(phi, torch.autograd.grad(F.mse_loss(functional_call(learner.net, phi, (xq,)), yq),
                                               list(phi.values()))))
    loss, _ = alg.objective(learner, batch)
    grads = dict(zip([n for n, _ in learner.named_parameters()], torch.autograd.grad(loss, list(learner.parameters()))))
    for n in theta:
        torch.testing.assert_close(grads["net." + n], at_phi[n], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(grads["log_lr." + n.replace(".", "-")], -alpha[n] * g_spt[n] * at_phi[n],
                                   rtol=1e-12, atol=1e-14)


def test_vmap_equals_the_loop_and_adapt_is_maml_adapt_with_a_dict_alpha():
    alg, base, batch = case("mlp")
    learner = alg.learner(base)
    spread_alphas(learner)
    got = [torch.autograd.grad(MetaSGD(init_lr=0.05, inner_steps=2, batching=b).objective(learner, batch)[0],
                               list(learner.parameters())) for b in ("vmap", "loop")]
    for a, b in zip(*got):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    theta, alpha = learner.split(parameters_of(learner))
    phi = alg.adapt(learner, parameters_of(learner), batch[0][0], batch[1][0])
    direct = adapt(learner.net, theta, batch[0][0], batch[1][0], loss_fn=F.mse_loss, steps=2, inner_lr=alpha)
    for n in theta:
        assert torch.equal(phi["net." + n], direct[n])


def test_meta_train_trains_theta_and_alpha_and_evaluate_adapts_with_the_learned_alpha():
    alg, base, batch = case("mlp")
    learner = alg.learner(base)
    before = {n: p.detach().clone() for n, p in learner.named_parameters()}
    meta_train(learner, alg, lambda g: batch, iterations=2, meta_lr=1e-2, progress=False)
    moved = {n: not torch.equal(p, before[n]) for n, p in learner.named_parameters()}
    assert all(moved.values()), [n for n, m in moved.items() if not m]
    lrs = learner.inner_lrs()
    assert set(lrs) == {n for n, _ in base.named_parameters()}
    assert not all(torch.allclose(a, torch.full_like(a, 0.05)) for a in lrs.values())
    losses, _ = evaluate(learner, alg, [batch], steps=3)
    for count, preds in zip((1, 3), alg.predict_steps(learner, batch, (1, 3))):  # 3 steps continue from 1
        torch.testing.assert_close(preds, alg.predict(learner, batch, steps=count), rtol=1e-12, atol=1e-14)
    spread = MAML(inner_lr=0.05, inner_steps=3)  # a fixed α gives other numbers than the learned one
    assert not torch.allclose(losses, evaluate(learner.net, spread, [batch])[0])
    assert math.isfinite(losses.mean().item())


# --- bad input: named before any work -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(init_lr=0.0), "init_lr must be a finite number > 0"),
    (dict(init_lr=-0.4), "init_lr must be a finite number > 0"),
    (dict(init_lr=float("nan")), "init_lr must be a finite number > 0"),
    (dict(inner_steps=-1), "inner_steps must be an integer >= 0"),
    (dict(first_order="yes"), "first_order must be True or False"),
    (dict(batching="expand"), "unknown batching for Meta-SGD 'expand'; choose one of auto, loop, vmap"),
    (dict(task="ranking"), "unknown task type"),
])
def test_settings_are_checked_when_made(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaSGD(**kwargs)


def test_a_network_without_its_alpha_is_named():
    with pytest.raises(ValueError, match=r"needs the network wrapped with its α: model = MetaSGD\(...\).learner"):
        MetaSGD().objective(SineMLP(), regression_batch())
    with pytest.raises(ValueError, match="model must be a torch nn.Module with parameters"):
        MetaSGDLearner(torch.nn.ReLU())
    with pytest.raises(ValueError, match="init_lr must be a finite number > 0"):
        MetaSGDLearner(SineMLP(), init_lr=0)
    with pytest.raises(TypeError, match="head_only"):
        MetaSGD(head_only=True)


def test_a_batch_for_another_task_type_is_named_through_the_wrapper():
    learner = MetaSGD("classification").learner(Conv4(3, hidden=4))
    xs, ys, xq, yq = image_batch()
    with pytest.raises(ValueError, match=r"y_spt holds class id 7, but the model predicts 3 classes"):
        MetaSGD("classification").objective(learner, (xs, torch.full_like(ys, 7), xq, yq))

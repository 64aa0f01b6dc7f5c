"""R2-D2's closed-form head is the ridge regression solution, and the meta-gradient through the
solve is exact (float64)."""
import pytest
import torch
import torch.nn.functional as F

from lecture_utils.models import Conv4
from lecture_utils.ridge_head import R2D2, RidgeHeadLearner, ridge_weights
from lecture_utils.training import evaluate, meta_train
from tests.test_maml import directional, finite_difference, image_batch, regression_batch

pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


def problem(n, d, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), F.one_hot(torch.arange(n) % classes, classes).double()


@pytest.mark.parametrize("n, d", [(5, 12), (15, 4)])
def test_woodbury_weights_are_the_primal_ridge_solution_and_its_minimiser(n, d):
    """Xᵀ(XXᵀ + λI_n)⁻¹Y (n×n) equals (XᵀX + λI_d)⁻¹XᵀY (d×d), and the gradient of the ridge loss
    ‖XW - Y‖² + λ‖W‖² vanishes there; with more or fewer examples than features."""
    x, y = problem(n, d)
    lam = 0.7
    w = ridge_weights(x, y, lam)
    primal = torch.linalg.solve(x.T @ x + lam * torch.eye(d), x.T @ y)
    torch.testing.assert_close(w, primal, rtol=1e-10, atol=1e-12)
    w = w.clone().requires_grad_()
    (g,) = torch.autograd.grad(((x @ w - y) ** 2).sum() + lam * (w ** 2).sum(), w)
    assert g.abs().max() < 1e-10
    moved = w.detach() + 1e-3 * torch.randn_like(w)
    assert ((x @ moved - y) ** 2).sum() + lam * (moved ** 2).sum() > ((x @ w - y) ** 2).sum() + lam * (w ** 2).sum()


def test_the_derivative_through_the_solve_is_the_analytic_one():
    """dW/dλ = -(XᵀX + λI)⁻¹ W and dW/dX by autograd through torch.linalg.solve, against the
    closed forms and central differences."""
    x, y = problem(5, 8)
    lam = torch.tensor(0.5, requires_grad=True)
    v = torch.randn(8, 3)
    (by_autograd,) = torch.autograd.grad((ridge_weights(x, y, lam) * v).sum(), lam)
    w = ridge_weights(x, y, lam.detach())
    analytic = -(torch.linalg.solve(x.T @ x + lam.detach() * torch.eye(8), w) * v).sum()
    torch.testing.assert_close(by_autograd, analytic, rtol=1e-10, atol=1e-12)
    x = x.clone().requires_grad_()
    dx = torch.randn_like(x)
    (gx,) = torch.autograd.grad((ridge_weights(x, y, 0.5) * v).sum(), x)
    eps = 1e-6
    numeric = ((ridge_weights(x.detach() + eps * dx, y, 0.5) * v).sum()
               - (ridge_weights(x.detach() - eps * dx, y, 0.5) * v).sum()) / (2 * eps)
    assert abs((gx * dx).sum().item() - numeric.item()) <= 1e-7 * max(1.0, abs(numeric.item()))


def learner(n_way=3, body="conv4"):
    """Conv4's body, or a smooth one (tanh features of the pixels). Central differences need a
    function without kinks near the point, and Conv4's ReLUs and max-pools have them: along one
    direction of its body here, steps of 1e-5, 1e-6 and 1e-7 gave -3.1312, -3.1330 and -3.12959,
    the gradient -3.12959. So the body is checked by finite differences on the smooth body, and
    Conv4's against the primal solve below."""
    torch.manual_seed(0)
    if body == "conv4":
        return RidgeHeadLearner.for_characters(n_way, hidden=6, lam=0.5, scale=2.0)
    smooth = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 6), torch.nn.Tanh())
    return RidgeHeadLearner(smooth, n_way, lam=0.5, scale=2.0)


@pytest.mark.parametrize("body, which", [("smooth", "all"), ("smooth", "lam"), ("smooth", "scale"),
                                         ("conv4", "lam"), ("conv4", "scale")])
def test_meta_gradient_through_the_solve_matches_finite_differences(body, which):
    """The directional derivative of the mean query cross-entropy along every parameter (the body,
    log λ, log s) and along λ or the scale alone, against central differences."""
    model, batch, alg = learner(body=body), image_batch(), R2D2()
    names = [n for n, _ in model.named_parameters()]
    direction = [torch.randn_like(p) * (which == "all" or n == f"log_{which}")
                 for n, p in model.named_parameters()]
    loss, _ = alg.objective(model, batch)
    exact = directional(torch.autograd.grad(loss, list(model.parameters())), direction)
    numeric = finite_difference(alg, model, batch, direction)
    assert set(names) >= {"log_lam", "log_scale"}
    assert abs(exact) > 1e-4
    assert abs(exact - numeric) <= 1e-6 * max(1.0, abs(numeric))


def test_conv4_meta_gradient_through_woodbury_equals_through_the_primal_solve():
    """Through Conv4's body: the gradient of the objective (n×n solve) equals that of the same
    objective with the d×d primal solve, for every parameter."""
    model, batch = learner(), image_batch()
    loss, _ = R2D2().objective(model, batch)
    got = torch.autograd.grad(loss, list(model.parameters()))
    losses = []
    for xs, ys, xq, yq in zip(*batch):
        x = model.body(xs)
        w = torch.linalg.solve(x.T @ x + model.log_lam.exp() * torch.eye(6), x.T @ F.one_hot(ys, 3).double())
        losses.append(F.cross_entropy(model.log_scale.exp() * model.body(xq) @ w, yq))
    want = torch.autograd.grad(torch.stack(losses).mean(), list(model.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_the_logits_are_the_scaled_ridge_head_on_the_query_features():
    model, (xs, ys, xq, yq) = learner(), image_batch(tasks=2)
    _, logits = R2D2().objective(model, (xs, ys, xq, yq))
    for i in range(2):
        w = torch.linalg.solve(model.body(xs[i]).T @ model.body(xs[i]) + 0.5 * torch.eye(6),
                               model.body(xs[i]).T @ F.one_hot(ys[i], 3).double())
        torch.testing.assert_close(logits[i], 2.0 * model.body(xq[i]) @ w, rtol=1e-9, atol=1e-11)
    # the bias the paper adds to the outputs: one number on every logit leaves the loss unchanged
    torch.testing.assert_close(F.cross_entropy(logits[0] + 3.0, yq[0]), F.cross_entropy(logits[0], yq[0]))


def test_vmap_equals_the_loop_and_training_moves_lambda_scale_and_body():
    model, batch = learner(), image_batch(tasks=3)
    got = [torch.autograd.grad(R2D2(batching=b).objective(model, batch)[0], list(model.parameters()))
           for b in ("vmap", "loop")]
    for a, b in zip(*got):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    meta_train(model, R2D2(), lambda g: batch, iterations=2, meta_lr=1e-2, progress=False)
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    losses, accs = evaluate(model, R2D2(), [batch])
    assert losses.shape == accs.shape == (3,)


# --- bad input: named before any work -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=0.0), "lam must be a finite number > 0"),
    (dict(lam=-1.0), "lam must be a finite number > 0"),
    (dict(scale=float("inf")), "scale must be a finite number > 0"),
    (dict(n_way=1), "n_way must be an integer >= 2"),
])
def test_learner_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RidgeHeadLearner(Conv4(3, hidden=4).body, **{"n_way": 3, **kwargs})


def test_wrong_models_batches_and_steps_are_named():
    model, batch = learner(), image_batch()
    with pytest.raises(ValueError, match=r"R2-D2 needs a body with a ridge head"):
        R2D2().objective(Conv4(3, hidden=6), batch)
    with pytest.raises(ValueError, match="classification x_spt must have shape"):
        R2D2().objective(model, regression_batch())
    with pytest.raises(ValueError, match=r"y_qry holds class id 3, but the model predicts 3 classes"):
        R2D2().objective(model, (*batch[:3], batch[3] + 1))
    with pytest.raises(ValueError, match="no inner steps to change"):
        evaluate(model, R2D2(), [batch], steps=1)
    with pytest.raises(ValueError, match="unknown batching for R2-D2 'expand'"):
        R2D2(batching="expand")

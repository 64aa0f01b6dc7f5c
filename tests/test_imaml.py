"""iMAML's implicit meta-gradient is the exact meta-gradient of the regularised inner problem when
the inner problem is solved and conjugate gradient converges; CG solves symmetric positive definite
systems with an error that falls step by step; memory does not grow with the inner steps (float64)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.functional import hessian
from torch.func import functional_call, grad

from lecture_utils.cost import graph_saved_bytes
from lecture_utils.imaml import IMAML, conjugate_gradient, flat
from lecture_utils.models import Conv4, SineMLP, parameters_of
from lecture_utils.training import evaluate_steps, meta_train
from tests.test_maml import image_batch, regression_batch

pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


def spd_system(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g)
    return m @ m.T / n + 0.1 * torch.eye(n), torch.randn(n, generator=g)


def test_conjugate_gradient_solves_a_random_spd_system_and_its_error_falls_every_step():
    a, b = spd_system()
    exact = torch.linalg.solve(a, b)
    errors = [((conjugate_gradient(lambda v: a @ v, b, k) - exact).norm() / exact.norm()).item() for k in range(1, 41)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]) if earlier > 1e-12), errors
    assert errors[0] > 0.1 and errors[-1] < 1e-12, errors   # 30 unknowns, rounding: 40 steps
    torch.testing.assert_close(conjugate_gradient(lambda v: a @ v, b, 60), exact, rtol=1e-9, atol=1e-11)
    assert conjugate_gradient(lambda v: a @ v, torch.zeros(30), 5).eq(0).all()  # b = 0: x = 0, no 0/0


def unrolled_meta_gradient(model, batch, alpha, lam, steps):
    """The reference: differentiate through ``steps`` gradient steps on L_spt(ϕ) + λ/2‖ϕ - θ‖²
    (torch.func.grad keeps each step's graph), then the mean query loss, by plain autograd."""
    theta = parameters_of(model)
    losses = []
    for xs, ys, xq, yq in zip(*batch):
        phi = dict(theta)
        for _ in range(steps):
            g = grad(lambda p: F.mse_loss(functional_call(model, p, (xs,)), ys))(phi)
            phi = {n: phi[n] - alpha * (g[n] + lam * (phi[n] - theta[n])) for n in phi}
        losses.append(F.mse_loss(functional_call(model, phi, (xq,)), yq))
    loss = torch.stack(losses).mean()
    return loss, flat(torch.autograd.grad(loss, list(theta.values())))


def imaml_meta_gradient(alg, model, batch):
    loss, preds = alg.objective(model, batch)
    return loss, flat(torch.autograd.grad(loss, list(model.parameters()))), preds


def test_implicit_equals_unrolled_meta_gradient_when_both_converge():
    """SineMLP sinusoids: 300 inner steps solve the regularised problem (its gradient ~1e-14), 60
    CG steps solve the 97-dimensional system; the unrolled reference, 300 differentiated steps,
    has then converged to the derivative of the solution too."""
    model, batch = SineMLP(hidden=8), regression_batch(tasks=2)
    alg = IMAML(inner_lr=0.02, inner_steps=300, lam=10.0, cg_steps=60)
    theta = parameters_of(model)
    for xs, ys in zip(batch[0], batch[1]):
        phi = alg.adapt(model, theta, xs, ys)
        regularised = grad(lambda p: F.mse_loss(functional_call(model, p, (xs,)), ys)
                           + alg.lam / 2 * sum(((p[n] - theta[n].detach()) ** 2).sum() for n in p))(phi)
        assert flat(regularised.values()).norm() < 1e-10
    want_loss, want = unrolled_meta_gradient(model, batch, alg.inner_lr, alg.lam, alg.inner_steps)
    got_loss, got, _ = imaml_meta_gradient(alg, model, batch)
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    # the correction (I + H/λ)⁻¹ matters here: the query gradient at ϕ alone is far from it
    at_phi = torch.stack([flat(grad(lambda p: F.mse_loss(functional_call(model, p, (xq,)), yq))(
        alg.adapt(model, theta, xs, ys)).values()) for xs, ys, xq, yq in zip(*batch)]).mean(0)
    assert (at_phi - want).norm() > 0.1 * want.norm()


def test_implicit_equals_the_closed_form_for_linear_regression():
    """f(x) = x·w with the mean squared error: H = 2/n XᵀX, the inner solution is
    ϕ* = (H + λI)⁻¹(λθ + 2/n Xᵀy), and its meta-gradient is λ(H + λI)⁻¹ ∇L_qry(ϕ*)."""
    model, lam = nn.Linear(4, 1, bias=False), 1.5
    g = torch.Generator().manual_seed(1)
    xs, xq = torch.randn(2, 6, 4, generator=g), torch.randn(2, 9, 4, generator=g)
    ys, yq = torch.randn(2, 6, 1, generator=g), torch.randn(2, 9, 1, generator=g)
    theta = model.weight.detach().T                                       # [4, 1]
    grads, losses = [], []
    for i in range(2):
        h = 2 / 6 * xs[i].T @ xs[i]
        phi = torch.linalg.solve(h + lam * torch.eye(4), lam * theta + 2 / 6 * xs[i].T @ ys[i])
        qry_grad = 2 / 9 * xq[i].T @ (xq[i] @ phi - yq[i])
        grads.append(lam * torch.linalg.solve(h + lam * torch.eye(4), qry_grad))
        losses.append(((xq[i] @ phi - yq[i]) ** 2).mean())
    alg = IMAML(inner_lr=0.1, inner_steps=400, lam=lam, cg_steps=4)     # CG is exact in 4 steps here
    loss, got, _ = imaml_meta_gradient(alg, model, (xs, ys, xq, yq))
    torch.testing.assert_close(loss, torch.stack(losses).mean(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got, torch.stack(grads).mean(0).flatten(), rtol=1e-10, atol=1e-12)


def test_cg_error_on_the_imaml_system_falls_with_the_cg_steps():
    """(I + H/λ) g = ∇L_qry(ϕ) for a SineMLP task, against the explicit Hessian and a direct solve."""
    model, batch = SineMLP(hidden=8), regression_batch(tasks=1)
    xs, ys, xq, yq = (t[0] for t in batch)
    alg = IMAML(inner_lr=0.02, inner_steps=300, lam=10.0)
    phi = alg.adapt(model, parameters_of(model), xs, ys)
    shapes = {n: p.shape for n, p in phi.items()}

    def support_loss(v):                                            # of the parameters as one vector
        pieces = torch.split(v, [s.numel() for s in shapes.values()])
        return F.mse_loss(functional_call(model, {n: t.view(shapes[n]) for n, t in zip(shapes, pieces)}, (xs,)), ys)

    h = hessian(support_loss, flat(phi.values()))
    system = torch.eye(len(h)) + h / alg.lam
    assert torch.linalg.eigvalsh(system).min() > 0                  # symmetric positive definite here
    qry_grad = flat(grad(lambda p: F.mse_loss(functional_call(model, p, (xq,)), yq))(phi).values())
    exact = torch.linalg.solve(system, qry_grad)
    errors = []
    for steps in (1, 2, 4, 8, 16, 32, 64):
        _, _, g = IMAML(inner_lr=0.02, lam=10.0, cg_steps=steps).task_meta_gradient(model, phi, xs, ys, xq, yq)
        errors.append(((g - exact).norm() / exact.norm()).item())
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]) if earlier > 1e-12), errors
    assert errors[0] > 0.1 and errors[-1] < 1e-12, errors


def test_memory_does_not_grow_with_the_inner_steps():
    """The graph behind the surrogate holds θ and the mean meta-gradient, whatever the inner steps."""
    model, batch = SineMLP(hidden=16), regression_batch(tasks=2)
    saved = [graph_saved_bytes(IMAML(inner_steps=s).objective(model, batch)[0]) for s in (1, 5, 20)]
    n_params = sum(p.numel() for p in model.parameters())
    assert saved[0] == saved[1] == saved[2] <= 2 * n_params * 8 + 1024, saved


def test_predictions_training_and_classification():
    model, batch = SineMLP(hidden=16), regression_batch(tasks=3)
    alg = IMAML(inner_lr=0.02, inner_steps=4, lam=2.0)
    _, _, preds = imaml_meta_gradient(alg, model, batch)
    torch.testing.assert_close(alg.predict(model, batch), preds, rtol=1e-12, atol=1e-14)
    for batching in ("loop", "vmap"):
        steps = IMAML(inner_lr=0.02, inner_steps=4, lam=2.0, batching=batching).predict_steps(model, batch, [2, None, 1])
        for s, p in zip([2, 4, 1], steps):
            torch.testing.assert_close(p, alg.predict(model, batch, steps=s), rtol=1e-10, atol=1e-12)
    scores = evaluate_steps(model, alg, [batch], steps=(0, 4))
    assert scores[4][0].mean() < scores[0][0].mean()               # adapting helps on the support's own task
    before = [p.detach().clone() for p in model.parameters()]
    meta_train(model, alg, lambda g: batch, iterations=2, meta_lr=1e-2, progress=False)
    assert all(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    conv = IMAML("classification", inner_lr=0.1, inner_steps=2, lam=1.0, cg_steps=3)
    loss, preds = conv.objective(Conv4(3, hidden=4), image_batch())
    loss.backward()
    assert preds.shape == (2, 6, 3) and torch.isfinite(loss)


# --- bad input: named before any work -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=0.0), "lam must be a finite number > 0"),
    (dict(lam=-1.0), "lam must be a finite number > 0"),
    (dict(lam=float("nan")), "lam must be a finite number > 0"),
    (dict(cg_steps=0), "cg_steps must be an integer >= 1"),
    (dict(cg_steps=2.5), "cg_steps must be an integer >= 1"),
    (dict(inner_lr=0.5, lam=4.0), r"inner_lr \* lam must be < 2, got 0.5 \* 4"),
    (dict(inner_lr=0.0), "inner_lr must be a finite number > 0"),
    (dict(inner_steps=-1), "inner_steps must be an integer >= 0"),
    (dict(batching="expand"), "unknown batching for iMAML 'expand'"),
])
def test_settings_are_checked_when_made(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IMAML(**kwargs)


def test_conjugate_gradient_checks_before_any_product():
    calls = []

    def matvec(v):
        calls.append(1)
        return v

    for steps in (0, -1, 1.5):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            conjugate_gradient(matvec, torch.ones(3), steps)
    with pytest.raises(ValueError, match="matvec must be a function"):
        conjugate_gradient(torch.eye(3), torch.ones(3), 3)
    assert calls == []


def test_a_wrong_batch_is_named_before_any_inner_step():
    with pytest.raises(ValueError, match="torch.float32 but the model computes in torch.float64"):
        IMAML().objective(SineMLP(), tuple(t.float() for t in regression_batch()))

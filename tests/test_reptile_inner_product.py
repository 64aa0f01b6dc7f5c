"""Notebook 05 §3: ``gradient_inner_product`` measures g_A · g_B, the quantity of Reptile's Taylor
expansion, exactly as a plain autograd loop over tasks does."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lecture_utils.models import SineMLP, parameters_of
from lecture_utils.reptile import gradient_inner_product
from lecture_utils.sinusoid import SinusoidTasks


def setup():
    torch.manual_seed(0)
    model = SineMLP(20).double()
    batch = SinusoidTasks().sample(4, 10, 7, torch.Generator().manual_seed(1), dtype=torch.float64)
    return model, batch


def loop_inner_products(model, batch):
    params = list(model.parameters())
    values = []
    for xa, ya, xb, yb in zip(batch.x_spt, batch.y_spt, batch.x_qry, batch.y_qry):
        g_a = torch.autograd.grad(F.mse_loss(model(xa), ya), params)
        g_b = torch.autograd.grad(F.mse_loss(model(xb), yb), params)
        values.append(sum((a * b).sum() for a, b in zip(g_a, g_b)))
    return torch.stack(values)


def test_matches_an_autograd_loop_per_task():
    model, batch = setup()
    ours = gradient_inner_product(model, parameters_of(model), *batch.tasks, loss_fn=F.mse_loss)
    assert ours.shape == (4,)
    torch.testing.assert_close(ours, loop_inner_products(model, batch), rtol=1e-12, atol=1e-14)
    assert len(set(ours.tolist())) == 4                      # one value per task, not one shared value


def test_same_batch_gives_the_squared_gradient_norm():
    model, batch = setup()
    ours = gradient_inner_product(model, parameters_of(model), batch.x_spt, batch.y_spt, batch.x_spt, batch.y_spt,
                                  loss_fn=F.mse_loss)
    params = list(model.parameters())
    norms = torch.stack([sum((g ** 2).sum() for g in torch.autograd.grad(F.mse_loss(model(x), y), params))
                         for x, y in zip(batch.x_spt, batch.y_spt)])
    torch.testing.assert_close(ours, norms, rtol=1e-12, atol=1e-14)


def test_rejects_mismatched_task_counts():
    model, batch = setup()
    with pytest.raises(ValueError, match="same number of tasks"):
        gradient_inner_product(model, parameters_of(model), batch.x_spt, batch.y_spt, batch.x_qry[:3],
                               batch.y_qry[:3], loss_fn=F.mse_loss)


def test_reptile_adapt_on_support_and_query_trains_on_both_but_tests_on_support():
    """``adapt_on="support+query"`` changes the meta-training direction only: ``predict`` (what
    ``evaluate`` scores) adapts on the support set alone, as a test-time learner must."""
    import pytest
    from lecture_utils.models import Conv4
    from lecture_utils.reptile import Reptile
    from lecture_utils.tasks import TaskBatch
    from lecture_utils.training import evaluate

    g = torch.Generator().manual_seed(0)
    batch = TaskBatch(torch.rand(2, 5, 1, 28, 28, generator=g), torch.arange(5).repeat(2, 1),
                      torch.rand(2, 10, 1, 28, 28, generator=g), torch.arange(5).repeat(2, 2))
    torch.manual_seed(0)
    model = Conv4(5, hidden=8)
    support, both = (Reptile("classification", 0.4, 2, adapt_on=a) for a in ("support", "support+query"))

    def direction(algo):
        model.zero_grad()
        algo.objective(model, batch)[0].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    assert not torch.allclose(direction(support), direction(both))  # the query images moved ϕ
    assert torch.equal(both.predict(model, batch), support.predict(model, batch))
    assert torch.equal(evaluate(model, both, [batch])[1], evaluate(model, support, [batch])[1])
    with pytest.raises(ValueError, match="adapt_on"):
        Reptile("classification", 0.4, 2, adapt_on="query")

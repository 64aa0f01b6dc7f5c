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

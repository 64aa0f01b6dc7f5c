"""What a student passes to the algorithms, the task families and the training loop: a silent wrong
number becomes a clear error (or the right answer), named before any work."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lecture_utils.blackbox import BlackBox, BlackBoxLearner
from lecture_utils.device import seed_everything
from lecture_utils.maml import MAML, adapt
from lecture_utils.models import Conv4, SineMLP, parameters_of
from lecture_utils.recipes import Recipe
from lecture_utils.reptile import Reptile
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.training import evaluate, meta_train
from lecture_utils.validation import LOSSES


def sine_batch(tasks=2, k=5, q=4, dtype=torch.float32):
    return SinusoidTasks().sample(tasks, k, q, torch.Generator().manual_seed(0), dtype=dtype).tasks


def image_batch(tasks=2, n_way=3):
    x = torch.rand(tasks, n_way * 2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n_way).repeat(2).repeat(tasks, 1)
    return x[:, :n_way], y[:, :n_way], x[:, n_way:], y[:, n_way:]


@pytest.mark.parametrize("which, shape", [("y_qry", 2), ("y_spt", 3)])
@pytest.mark.parametrize("algorithm", [MAML(), Reptile(), BlackBox()])
def test_targets_wider_than_the_predictions_are_refused(algorithm, which, shape):
    """[T, Q, 2] targets against [T, Q, 1] predictions would broadcast into a wrong MSE."""
    x_spt, y_spt, x_qry, y_qry = sine_batch()
    wide = {"y_spt": y_spt, "y_qry": y_qry}
    wide[which] = wide[which].expand(-1, -1, shape).contiguous()
    model = BlackBoxLearner.for_sinusoid() if isinstance(algorithm, BlackBox) else SineMLP()
    with pytest.raises(ValueError, match="last dimension|predictions have shape"):
        algorithm.objective(model, (x_spt, wide["y_spt"], x_qry, wide["y_qry"]))
    with pytest.raises(ValueError, match="last dimension|predictions have shape"):
        evaluate(model, algorithm, [(x_spt, wide["y_spt"], x_qry, wide["y_qry"])])


def test_the_regression_loss_itself_refuses_a_broadcast():
    with pytest.raises(ValueError, match=r"predictions have shape \(4, 1\) but the targets have \(4, 2\)"):
        LOSSES["regression"](torch.zeros(4, 1), torch.zeros(4, 2))


def test_head_only_on_a_model_without_a_head_is_an_error_not_a_no_op():
    model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    x_spt, y_spt, x_qry, y_qry = sine_batch()
    with pytest.raises(ValueError, match="head_only=True adapts the parameters named 'head.*'"):
        adapt(model, parameters_of(model), x_spt[0], y_spt[0], loss_fn=F.mse_loss, head_only=True)
    for batching in ("loop", "vmap", "expand"):
        with pytest.raises(ValueError, match="head"):
            MAML(head_only=True, batching=batching).objective(model, (x_spt, y_spt, x_qry, y_qry))


@pytest.mark.parametrize("lr", [torch.tensor(-0.5), torch.tensor(float("nan")), torch.tensor([0.1, 0.0]),
                                torch.tensor(1)])
def test_a_tensor_inner_lr_is_checked_too(lr):
    with pytest.raises(ValueError, match="inner_lr"):
        MAML(inner_lr=lr)
    model = SineMLP()
    x_spt, y_spt, _, _ = sine_batch()
    with pytest.raises(ValueError, match="inner_lr"):
        adapt(model, parameters_of(model), x_spt[0], y_spt[0], loss_fn=F.mse_loss, inner_lr=lr)


@pytest.mark.parametrize("change, match", [
    (lambda a: {**a, "head.weight": torch.full((40,), 0.1)}, r"inner_lr\['head.weight'\] has shape \(40,\) but the "
                                                             r"parameter has shape \(1, 40\)"),
    (lambda a: {n: v for n, v in a.items() if n != "head.bias"}, r"it has none for \['head.bias'\]"),
    (lambda a: {**a, "head.wieght": torch.tensor(0.1)}, r"it names \['head.wieght'\], which params does not hold"),
    (lambda a: {**a, "body.0.bias": -a["body.0.bias"]}, r"inner_lr\['body.0.bias'\] must be finite and > 0"),
])
def test_a_per_parameter_inner_lr_is_checked_name_by_name(change, match):
    """A per-parameter α (Meta-SGD's) of the wrong shape would broadcast into a wrong step."""
    model = SineMLP()
    x_spt, y_spt, _, _ = sine_batch()
    alphas = {n: torch.full_like(p, 0.1) for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match=match):
        adapt(model, parameters_of(model), x_spt[0], y_spt[0], loss_fn=F.mse_loss, inner_lr=change(alphas))


def test_a_positive_tensor_inner_lr_works_and_is_differentiable():
    lr = torch.tensor(0.05, requires_grad=True)
    loss, _ = MAML(inner_lr=lr, batching="loop").objective(SineMLP(), sine_batch())
    (g,) = torch.autograd.grad(loss, lr)
    assert torch.isfinite(g)


@pytest.mark.parametrize("label", [-100, -1])
def test_negative_class_ids_are_refused_not_ignored(label):
    x_spt, y_spt, x_qry, y_qry = image_batch()
    y_qry = y_qry.clone()
    y_qry[0, 0] = label
    with pytest.raises(ValueError, match="negative class id"):
        MAML("classification", inner_lr=0.4).objective(Conv4(3, hidden=4), (x_spt, y_spt, x_qry, y_qry))
    with pytest.raises(IndexError):  # the loss alone no longer skips -100 either
        LOSSES["classification"](torch.zeros(2, 3), torch.tensor([0, -100]))


@pytest.mark.parametrize("k, q, where", [(0, 4, "support"), (5, 0, "query")])
def test_empty_sets_are_named(k, q, where):
    x = torch.zeros(2, k + q, 1)
    batch = (x[:, :k], x[:, :k], x[:, k:], x[:, k:])
    with pytest.raises(ValueError, match=f"the {where} set is empty"):
        MAML().objective(SineMLP(), batch)
    with pytest.raises(ValueError, match=f"the {where} set is empty"):
        meta_train(SineMLP(), MAML(), lambda g: batch, iterations=1, progress=False)


def test_no_tasks_and_no_batches_are_named():
    with pytest.raises(ValueError, match="no tasks"):
        MAML().objective(SineMLP(), tuple(t[:0] for t in sine_batch()))
    with pytest.raises(ValueError, match="no held-out batches"):
        evaluate(SineMLP(), MAML(), [])


def test_a_float64_batch_into_a_float32_model_names_both_dtypes():
    with pytest.raises(ValueError, match="torch.float64 but the model computes in torch.float32"):
        MAML().objective(SineMLP(), sine_batch(dtype=torch.float64))


def test_uint8_images_are_refused_with_the_conversion():
    x_spt, y_spt, x_qry, y_qry = image_batch()
    with pytest.raises(ValueError, match=r"floating point, got torch.uint8.*/ 255"):
        MAML("classification").objective(Conv4(3, hidden=4), ((x_spt * 255).to(torch.uint8), y_spt, x_qry, y_qry))


def test_two_input_features_into_the_one_input_mlp():
    x_spt, y_spt, x_qry, y_qry = sine_batch()
    with pytest.raises(ValueError, match=r"SineMLP takes inputs of shape \[\.\.\., 1\]"):
        MAML().objective(SineMLP(), (x_spt.expand(-1, -1, 2), y_spt, x_qry.expand(-1, -1, 2), y_qry))


def test_regression_targets_without_their_last_dimension_get_the_right_hint():
    x_spt, y_spt, x_qry, y_qry = sine_batch()
    with pytest.raises(ValueError, match=r"add the output dimension: y_spt\[\.\.\., None\]"):
        MAML().objective(SineMLP(), (x_spt, y_spt[..., 0], x_qry, y_qry))
    with pytest.raises(ValueError, match=r"add the task dimension: x_spt\[None\]"):
        MAML().objective(SineMLP(), (x_spt[0], y_spt[0], x_qry[0], y_qry[0]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(iterations=2.5), "iterations must be an integer"),
    (dict(iterations="3"), "iterations must be an integer"),
    (dict(iterations=1, val_every=0), "val_every must be an integer >= 1"),
    (dict(iterations=1, seed=1.5), "seed must be an integer"),
])
def test_meta_train_checks_its_counts_before_any_step(kwargs, match):
    steps = []
    with pytest.raises(ValueError, match=match):
        meta_train(SineMLP(), MAML(), lambda g: steps.append(1) or sine_batch(), progress=False,
                   validation=lambda: (0.0, None), **kwargs)
    assert steps == []


def test_a_misspelt_task_family_is_named_at_once():
    with pytest.raises(ValueError, match="unknown task family 'sinusiod'; choose one of sinusoid, characters"):
        Recipe("x", "01", MAML(), "sinusiod", k_shot=5, k_query=5)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32"])
def test_sinusoid_tasks_need_a_floating_dtype(dtype):
    with pytest.raises(ValueError, match="floating-point torch dtype"):
        SinusoidTasks().sample(2, 5, 5, torch.Generator().manual_seed(0), dtype=dtype)


@pytest.mark.parametrize("seed", [1.5, -1, "0", True])
def test_seed_everything_needs_a_whole_number(seed):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        seed_everything(seed)


@pytest.mark.parametrize("flag", ["first_order", "head_only"])
def test_the_approximation_flags_are_booleans(flag):
    with pytest.raises(ValueError, match=f"{flag} must be True or False"):
        MAML(**{flag: "yes"})


def test_a_machine_without_the_checkpoints_is_told_where_to_get_them(tmp_path, monkeypatch):
    """A package installed without the repository's checkpoints/ (a notebook opened elsewhere) must
    not start hours of training in silence."""
    from lecture_utils.checkpoints import CHECKPOINTS_ENV
    from lecture_utils.pretrained import load_pretrained

    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"ships them in its checkpoints/ folder.*retrain=True"):
        load_pretrained("chars5_maml", "cpu")


def test_no_model_or_a_model_without_parameters_is_named():
    with pytest.raises(ValueError, match="model must be a torch nn.Module with parameters"):
        MAML().objective(None, sine_batch())
    with pytest.raises(ValueError, match="model must be a torch nn.Module with parameters"):
        Reptile().objective(torch.nn.ReLU(), sine_batch())


def test_adapt_names_a_wrong_params_or_loss():
    x_spt, y_spt, _, _ = sine_batch()
    model = SineMLP()
    with pytest.raises(ValueError, match="params must be a dict name -> tensor"):
        adapt(model, list(model.parameters()), x_spt[0], y_spt[0], loss_fn=F.mse_loss)
    with pytest.raises(ValueError, match="loss_fn must be a function"):
        adapt(model, parameters_of(model), x_spt[0], y_spt[0], loss_fn=None)


def test_class_ids_beyond_the_models_classes_are_named():
    x = torch.rand(1, 3, 1, 28, 28)
    batch = (x, torch.tensor([[0, 1, 7]]), x, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"y_spt holds class id 7, but the model predicts 3 classes"):
        MAML("classification").objective(Conv4(3, hidden=4), batch)


def test_evaluate_steps_needs_a_step_count():
    from lecture_utils.training import evaluate_steps
    with pytest.raises(ValueError, match="at least one step count"):
        evaluate_steps(SineMLP(), MAML(), [sine_batch()], steps=[])


def test_measure_needs_a_function():
    from lecture_utils.cost import measure
    with pytest.raises(ValueError, match="loss_fn must be a function"):
        measure(3)

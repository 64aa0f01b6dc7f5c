import math

import pytest
import torch

from lecture_utils.sinusoid import SinusoidBatch, SinusoidTasks, sinusoid
from lecture_utils.tasks import TaskBatch


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sample_shapes_and_dtype():
    batch = SinusoidTasks().sample(4, 5, 7, generator())
    assert isinstance(batch, SinusoidBatch)
    assert batch.x_spt.shape == batch.y_spt.shape == (4, 5, 1)
    assert batch.x_qry.shape == batch.y_qry.shape == (4, 7, 1)
    assert batch.amplitude.shape == batch.phase.shape == (4,)
    assert all(tensor.dtype == torch.float32 for tensor in batch)
    assert SinusoidTasks().sample(2, 1, 1, generator(), dtype=torch.float64).x_spt.dtype == torch.float64


def test_defaults_follow_the_maml_paper_and_targets_match_the_curve():
    batch = SinusoidTasks().sample(2000, 10, 10, generator())
    assert 0.1 <= batch.amplitude.min() and batch.amplitude.max() <= 5.0
    assert 0.0 <= batch.phase.min() and batch.phase.max() <= math.pi
    for x in (batch.x_spt, batch.x_qry):
        assert -5.0 <= x.min() and x.max() <= 5.0
    # the draws cover the ranges rather than a corner of them
    assert batch.amplitude.min() < 0.2 and batch.amplitude.max() > 4.9
    expected = batch.amplitude[:, None, None] * torch.sin(batch.x_qry - batch.phase[:, None, None])
    assert torch.allclose(batch.y_qry, expected)


def test_same_seed_same_tasks_and_other_seed_other_tasks():
    tasks = SinusoidTasks()
    first, again = tasks.sample(3, 5, 5, generator(7)), tasks.sample(3, 5, 5, generator(7))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first.x_spt, tasks.sample(3, 5, 5, generator(8)).x_spt)


def test_out_of_distribution_ranges_are_honoured():
    tasks = SinusoidTasks(amplitude=(5.0, 10.0), phase=(math.pi, 2 * math.pi), x_range=(5.0, 10.0))
    batch = tasks.sample(500, 5, 5, generator())
    assert 5.0 <= batch.amplitude.min() and batch.amplitude.max() <= 10.0
    assert math.pi <= batch.phase.min() and batch.phase.max() <= 2 * math.pi
    assert 5.0 <= batch.x_spt.min() and batch.x_qry.max() <= 10.0
    fixed = SinusoidTasks(amplitude=(2.0, 2.0)).sample(3, 1, 1, generator())
    assert torch.all(fixed.amplitude == 2.0)


@pytest.mark.parametrize("field, bounds", [
    ("amplitude", (5.0, 0.1)),
    ("phase", (0.0,)),
    ("x_range", (-5.0, float("inf"))),
    ("x_range", "wide"),
])
def test_bad_ranges_are_rejected(field, bounds):
    with pytest.raises(ValueError, match=rf"{field} must be a range \(low, high\).*low <= high"):
        SinusoidTasks(**{field: bounds})


@pytest.mark.parametrize("counts, name", [((0, 5, 5), "num_tasks"), ((2, 0, 5), "k_support"),
                                          ((2, 5, -1), "k_query"), ((2, 2.5, 5), "k_support")])
def test_non_positive_counts_are_rejected(counts, name):
    with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1"):
        SinusoidTasks().sample(*counts, generator())


def test_the_generator_must_be_a_cpu_generator():
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        SinusoidTasks().sample(2, 5, 5, generator=None)


def test_make_places_the_students_points():
    batch = SinusoidTasks().make(2.0, 0.5, [1.0, -2.0, 3.0], k_query=50, generator=generator())
    assert batch.x_spt.shape == (1, 3, 1) and batch.x_qry.shape == (1, 50, 1)
    assert batch.x_spt.flatten().tolist() == [1.0, -2.0, 3.0]
    assert torch.allclose(batch.y_spt, 2.0 * torch.sin(batch.x_spt - 0.5))
    assert -5.0 <= batch.x_qry.min() and batch.x_qry.max() <= 5.0
    assert SinusoidTasks().make(1.0, 0.0, [], k_query=5, generator=generator()).x_spt.shape == (1, 0, 1)
    several = SinusoidTasks().make([1.0, 3.0], [0.0, 1.0], [0.5], k_query=4, generator=generator())
    assert torch.allclose(several.y_spt.flatten(), torch.tensor([math.sin(0.5), 3.0 * math.sin(-0.5)]))


def test_make_rejects_mismatched_parameters_and_points():
    tasks = SinusoidTasks()
    with pytest.raises(ValueError, match="2 amplitudes and 3 phases"):
        tasks.make([1.0, 2.0], [0.0, 0.1, 0.2], [0.0], k_query=5, generator=generator())
    with pytest.raises(ValueError, match=r"x_spt must have shape \[n\] or \[2, n, 1\]"):
        tasks.make([1.0, 2.0], [0.0, 0.1], torch.zeros(3, 4, 1), k_query=5, generator=generator())


def test_batch_duck_types_task_batch():
    batch = SinusoidTasks().sample(3, 4, 6, generator())
    assert isinstance(batch.tasks, TaskBatch)
    assert all(a is b for a, b in zip(batch.tasks, batch[:4]))
    last = batch.task(-1)
    assert last.x_spt.shape == (1, 4, 1) and torch.equal(last.amplitude, batch.amplitude[2:])
    assert torch.equal(batch.tasks.task(1).y_qry, batch.y_qry[1:2])
    assert batch.to("cpu").x_spt.device.type == "cpu"
    with pytest.raises(ValueError, match=r"task index 3 is out of range.*-3\.\.2"):
        batch.task(3)
    with pytest.raises(ValueError, match="task index"):
        batch.tasks.task(-4)


def test_sinusoid_broadcasts_per_task_parameters():
    x = torch.linspace(-5, 5, 11).reshape(1, 11, 1).expand(2, -1, -1)
    y = sinusoid(x, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]))
    assert torch.allclose(y[1], 2.0 * torch.sin(x[1] - 1.0))
    assert torch.allclose(sinusoid(x[0], 3.0, 0.5), 3.0 * torch.sin(x[0] - 0.5))
    with pytest.raises(ValueError, match=r"amplitude must be a number, or one value per task"):
        sinusoid(x, torch.ones(3), 0.0)


@pytest.mark.cuda
def test_same_seed_gives_the_same_tasks_on_the_gpu():
    cpu = SinusoidTasks().sample(8, 5, 5, generator(3))
    gpu = SinusoidTasks().sample(8, 5, 5, generator(3), device="cuda")
    assert gpu.x_spt.is_cuda
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))

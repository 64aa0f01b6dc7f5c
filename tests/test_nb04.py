"""Notebook 04's self-checks and shift explorer: worked solutions pass, usual mistakes get hints."""
from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from lecture_utils.blackbox import BlackBox, BlackBoxLearner
from lecture_utils.distortions import distort
from lecture_utils.episodes import EpisodeSampler, load_characters
from lecture_utils.exercises import nb04
from lecture_utils.maml import MAML
from lecture_utils.models import Conv4
from lecture_utils.widgets.shift import check_shift, distort_episodes, draw_report, shift_explorer, shift_report
from lecture_utils.tasks import TaskBatch

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def episodes():
    sampler = EpisodeSampler(load_characters("test", verbose=False), 5, 1, 3)
    return sampler.sample(4, torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def learners():
    torch.manual_seed(0)
    return {"MAML": (Conv4(5, 8), MAML("classification", inner_lr=0.4, inner_steps=1)),
            "black box": (BlackBoxLearner.for_characters(5, 8, width=16), BlackBox("classification"))}


def verdict_of(capsys) -> str:
    return capsys.readouterr().out.strip()


def test_distorted_episode(episodes, capsys):
    nb04.check_distorted_episode(episodes, nb04.solution_distorted_episode(episodes, 0.6, 0.7), 0.6, 0.7)
    assert verdict_of(capsys).startswith("Correct")
    support_only = TaskBatch(distort(episodes.x_spt, shear=0.6, scale=0.7), *episodes[1:])
    nb04.check_distorted_episode(episodes, support_only, 0.6, 0.7)
    assert "query images are undistorted" in verdict_of(capsys)
    nb04.check_distorted_episode(episodes, None, 0.6, 0.7)
    assert verdict_of(capsys).startswith("Not yet")


def test_headroom(capsys):
    accuracies = {"MAML": [0.95, 0.8, 0.7], "black box": [0.9, 0.7, 0.55]}
    nb04.check_headroom(*nb04.solution_headroom(accuracies), accuracies)
    assert verdict_of(capsys).startswith("Correct")
    nb04.check_headroom(0.7 / 0.95, 0.55 / 0.9, accuracies)
    assert "subtract chance" in verdict_of(capsys)


def test_more_steps(episodes, learners, capsys):
    model, algorithm = learners["MAML"]
    batches = [distort_episodes(episodes, 1.2, 1.0)]
    nb04.check_more_steps(nb04.solution_more_steps(model, algorithm, batches, 3), model, algorithm, batches, steps=3)
    assert verdict_of(capsys).startswith("Correct")
    nb04.check_more_steps(None, model, algorithm, batches, steps=3)
    assert verdict_of(capsys).startswith("Not yet")


def test_phase_flip(capsys):
    x = torch.linspace(-5, 5, 20)
    nb04.check_phase_flip(*nb04.solution_phase_flip(x, 2.0, 0.5), x, amplitude=2.0, phase=0.5)
    assert verdict_of(capsys).startswith("Correct")
    nb04.check_phase_flip(torch.zeros(20), torch.zeros(20), x, amplitude=2.0, phase=0.5)
    assert verdict_of(capsys).startswith("Not yet")


def test_shift_report_and_figure(episodes, learners):
    report = shift_report(learners, episodes, shear=0.5, scale=0.8, steps={"MAML": 2})
    assert report["MAML"]["preds"].shape == episodes.y_qry.shape
    assert report["black box"]["accs"].shape == (4,)
    fig = draw_report(report, 1, 0.5, 0.8, note="MAML: 2 inner step(s)")
    assert "MAML" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("shear, scale", [(2.0, 1.0), (0.0, 0.0), (math.nan, 1.0), (0.0, 5.0)])
def test_bad_shift_is_a_message(shear, scale, episodes, learners):
    assert check_shift(shear, scale)
    with pytest.raises(ValueError, match="must be"):
        shift_report(learners, episodes, shear, scale)


def test_explorer_builds_and_checks_stepper(episodes, learners):
    box = shift_explorer(learners, episodes)
    assert len(box.children) == 3
    with pytest.raises(ValueError, match="not one of the learners"):
        shift_explorer(learners, episodes, stepper="Reptile")

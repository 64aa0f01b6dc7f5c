"""Notebook 04's shift explorer and report (its exercises are tested in tests/test_exercises.py)."""
from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from lecture_utils.blackbox import BlackBox, BlackBoxLearner
from lecture_utils.episodes import EpisodeSampler, load_characters
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

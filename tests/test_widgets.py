"""The widget modules (lecture_utils.widgets): pure helpers import without ipywidgets, and the
sinusoid explorer builds and redraws when a control moves (matplotlib Agg, no browser).

The shift explorer and the sketchpad are tested with their notebooks (test_nb04, test_nb05).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from lecture_utils.models import SineMLP  # noqa: E402
from lecture_utils.widgets import sinusoid as explorer  # noqa: E402
from lecture_utils.widgets.sinusoid import parse_points  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, expected", [
    ("", []), ("   ", []), (None, []), ("-4, 0.5, 2", [-4.0, 0.5, 2.0]), ("1;2", [1.0, 2.0]),
    ("-5, 5", [-5.0, 5.0]), ("1e0", [1.0]),
])
def test_parse_points_reads_comma_separated_numbers(text, expected):
    assert parse_points(text, -5, 5) == expected


@pytest.mark.parametrize("text, message", [
    ("1,,2", "x value 2 is empty"), ("1, two", "'two' is not a number"), ("6", "outside \\[-5, 5\\]"),
    ("nan", "outside"), ("inf", "outside"), (",".join(["0"] * 51), "use at most 50"),
])
def test_parse_points_names_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_points(text, -5, 5)


@pytest.mark.parametrize("module", ["lecture_utils.widgets.sinusoid", "lecture_utils.widgets.shift",
                                    "lecture_utils.widgets.sketchpad"])
def test_widget_modules_import_without_ipywidgets(module):
    script = f"import sys; sys.modules['ipywidgets'] = None; import {module}; print('ok')"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_the_explorer_builds_and_redraws_when_a_control_moves(monkeypatch, capsys):
    pytest.importorskip("ipywidgets")
    shown = []
    monkeypatch.setattr(explorer.plt, "show", lambda: shown.append(explorer.plt.gcf()))
    torch.manual_seed(0)
    box = explorer.sinusoid_adaptation_explorer(SineMLP(), SineMLP())
    assert len(shown) == 1 and "MSE" in capsys.readouterr().out
    controls, _ = box.children
    amplitude = controls.children[0].children[0]
    assert amplitude.description == "amplitude A"
    amplitude.value = 4.0
    assert len(shown) == 2 and "MSE" in capsys.readouterr().out
    points = controls.children[1].children[2]
    points.value = "1, oops"
    assert "Check the x values: 'oops' is not a number" in capsys.readouterr().out
    explorer.plt.close("all")

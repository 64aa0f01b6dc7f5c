"""The learning curves notebook 05 plots: the committed file, the loader's refusals, the script's checks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lecture_utils.curves import LEARNING_CURVES, load_learning_curve
from lecture_utils.pretrained import data_source, load_pretrained
from lecture_utils.recipes import recipe
from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
PLOTTED = ("chars5_maml", "chars5_fomaml_a0.1", "chars5_reptile")   # what notebook 05 plots


@pytest.fixture(scope="module")
def script():
    return load_script("learning_curves")


def a_curve(name="chars5_reptile", **changes):
    r = recipe(name)
    curve = {"recipe": json.loads(json.dumps(r.describe())), "data": data_source(r), "step": [0, 250],
             "mean": [0.2, 0.5], "ci95": [0.01, 0.01]}
    curve.update(changes)
    return curve


def write(tmp_path, curves):
    path = tmp_path / "learning_curves.json"
    path.write_text(json.dumps(curves))
    return path


@pytest.mark.parametrize("name", PLOTTED)
def test_the_committed_curves_end_at_the_committed_models(name):
    curve = load_learning_curve(name)
    r = recipe(name)
    assert curve["step"] == list(range(0, r.iterations + 1, 250))
    _, entry = load_pretrained(name, "cpu")
    assert curve["checkpoint_score"] == entry["score"]["mean"]      # compared with the committed model
    if curve["max_abs_diff_from_checkpoint"] == 0:                  # the re-run reproduced its weights:
        assert curve["mean"][-1] == entry["score"]["mean"]          # the same score, to the digit
    else:                                                           # another device's run (a GPU's):
        assert abs(curve["mean"][-1] - entry["score"]["mean"]) < 0.03   # ends near it (notebook 05 says so)


def test_a_missing_file_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/learning_curves.py chars5_reptile"):
        load_learning_curve("chars5_reptile", tmp_path / "absent.json")


def test_a_missing_curve_names_the_command(tmp_path):
    path = write(tmp_path, {"chars5_maml": a_curve("chars5_maml")})
    with pytest.raises(KeyError, match="no curve for chars5_reptile.*learning_curves.py chars5_reptile"):
        load_learning_curve("chars5_reptile", path)


def test_a_curve_of_another_recipe_is_refused(tmp_path):
    changed = a_curve()
    changed["recipe"]["iterations"] = 100
    with pytest.raises(RuntimeError, match="recipe changed since training .iterations: 100 when trained, 3000 now.; "
                                           "record it with `python scripts/learning_curves.py chars5_reptile`"):
        load_learning_curve("chars5_reptile", write(tmp_path, {"chars5_reptile": changed}))


def test_a_curve_of_another_data_set_is_refused(tmp_path):
    path = write(tmp_path, {"chars5_reptile": a_curve(data="omniglot-elsewhere")})
    with pytest.raises(RuntimeError, match="recorded on omniglot-elsewhere"):
        load_learning_curve("chars5_reptile", path)


def test_a_damaged_curve_is_refused(tmp_path):
    path = write(tmp_path, {"chars5_reptile": a_curve(mean=[0.2])})
    with pytest.raises(ValueError, match="damaged"):
        load_learning_curve("chars5_reptile", path)


def test_a_good_curve_loads(tmp_path):
    assert load_learning_curve("chars5_reptile", write(tmp_path, {"chars5_reptile": a_curve()}))["mean"] == [0.2, 0.5]


@pytest.mark.parametrize("argv, message", [
    (["no_such_recipe"], "unknown recipe"),
    (["chars5_reptile", "--every", "0"], "at least 1"),
    (["chars5_reptile", "--out", "/no/such/folder/curves.json"], "cannot write"),
])
def test_the_script_refuses_bad_arguments_before_training(script, monkeypatch, capsys, argv, message):
    monkeypatch.setattr(script, "curve", lambda *a, **k: pytest.fail("trained despite bad arguments"))
    with pytest.raises(SystemExit):
        script.main(argv)
    assert message in capsys.readouterr().err


def test_the_script_refuses_to_overwrite_a_file_that_is_not_curves(script, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(script, "curve", lambda *a, **k: pytest.fail("trained despite a bad --out"))
    out = tmp_path / "notes.json"
    out.write_text("my notes, not JSON")
    with pytest.raises(SystemExit):
        script.main(["chars5_reptile", "--out", str(out)])
    assert "not a curves file" in capsys.readouterr().err
    assert out.read_text() == "my notes, not JSON"


def test_the_script_keeps_the_other_curves(script, monkeypatch, tmp_path):
    out = write(tmp_path, {"chars5_maml": a_curve("chars5_maml")})
    monkeypatch.setattr(script, "curve", lambda name, every, device: a_curve(name, step=[0, every]))
    assert script.main(["chars5_reptile", "--every", "100", "--out", str(out)]) == 0
    curves = json.loads(out.read_text())
    assert sorted(curves) == ["chars5_maml", "chars5_reptile"]
    assert curves["chars5_reptile"]["step"] == [0, 100]


def test_the_default_file_is_in_results():
    assert LEARNING_CURVES == REPO / "results" / "learning_curves.json"

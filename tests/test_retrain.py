"""``python -m lecture_utils.retrain`` (``make reproduce``): its own entry point, the measured plan,
the order of training, the progress bars' bookkeeping and the failure report, on tiny recipes."""
import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lecture_utils import pretrained, retrain
from lecture_utils.checkpoints import current_store, sha256_of
from lecture_utils.recipes import RECIPES

PACKAGE = Path(__file__).resolve().parents[1] / "lecture_utils"


@pytest.fixture
def tiny(monkeypatch, tmp_checkpoints):
    """Two sinusoid recipes of a few iterations each, registered in place of the real ones."""
    recipes = {"tiny_a": replace(RECIPES["sine_maml_k10"], name="tiny_a", iterations=4, eval_tasks=10),
               "tiny_b": replace(RECIPES["sine_pretrained"], name="tiny_b", iterations=2, eval_tasks=10)}
    monkeypatch.setattr(retrain, "RECIPES", recipes)
    monkeypatch.setattr(pretrained, "RECIPES", recipes)
    return recipes


def test_retrain_is_the_only_command_line_module_and_no_library_module_imports_it():
    """One entry point for retraining: ``python -m lecture_utils.retrain``. No other module of the
    package runs as a script, and none imports the command-line module."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imports |= {f"{node.module}.{alias.name}" if node.module == "lecture_utils" else node.module
                    for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
        mains = [node for node in ast.walk(tree) if isinstance(node, ast.Compare)
                 and isinstance(node.left, ast.Name) and node.left.id == "__name__"]
        if path.name == "retrain.py":
            assert mains, "retrain.py has no `if __name__ == \"__main__\"`"
            continue
        assert "lecture_utils.retrain" not in imports, f"{path.name} imports the command-line module"
        assert not mains, f"{path.name} runs as a script; only lecture_utils.retrain does"


def test_python_m_lecture_utils_retrain_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "lecture_utils.retrain", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    assert "--plan" in done.stdout and "--jobs" in done.stdout and "--report" in done.stdout


def test_wall_minutes_hands_each_model_to_the_first_free_job():
    assert retrain.wall_minutes([10, 6, 5, 1], jobs=1) == 22
    assert retrain.wall_minutes([10, 6, 5, 1], jobs=2) == 11     # 10 + 1 | 6 + 5
    assert retrain.wall_minutes([3], jobs=4) == 3


def test_the_plan_times_every_model_and_trains_nothing(tiny, tmp_checkpoints, capsys):
    assert retrain.main(["--plan", "tiny_a", "tiny_b", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "tiny_a" in out and "tiny_b" in out and "total" in out and "ms/iteration" in out
    assert not any(tmp_checkpoints.iterdir())                   # no checkpoint, no manifest


def test_the_plan_puts_the_longest_model_first(tiny, monkeypatch, capsys):
    monkeypatch.setattr(retrain, "seconds_per_iteration", lambda r, device: {"tiny_a": 0.1, "tiny_b": 1.0}[r.name])
    assert retrain.plan(["tiny_a", "tiny_b"], torch.device("cpu"), jobs=2) == ["tiny_b", "tiny_a"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[0] == "tiny_b" and lines[3].split()[0] == "tiny_a"


def test_retrain_trains_and_records_every_model_with_its_minutes(tiny, tmp_checkpoints, tmp_path, capsys):
    report = tmp_path / "REPRODUCE.md"
    assert retrain.main(["tiny_a", "tiny_b", "--device", "cpu", "--report", str(report)]) == 0
    manifest = current_store().read_manifest()
    assert set(manifest) == {"tiny_a.pt", "tiny_b.pt"}
    assert all(entry["minutes"] >= 0 and entry["recipe"]["iterations"] in (2, 4) for entry in manifest.values())
    assert "2 of 2 models trained" in capsys.readouterr().out
    text = report.read_text()
    for name, entry in (("tiny_a", manifest["tiny_a.pt"]), ("tiny_b", manifest["tiny_b.pt"])):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{entry['minutes']:.1f}" in row and f"{entry['score']['mean']:.4f}" in row
        assert row.rstrip().endswith("| — |")                   # nothing was replaced
    assert "Total:" in text and "2 of 2 models trained" in text


def test_a_report_in_a_missing_folder_is_refused_before_any_work(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(retrain, "seconds_per_iteration", lambda *a: pytest.fail("timed before checking"))
    with pytest.raises(SystemExit):
        retrain.main(["tiny_a", "--report", str(tmp_path / "no-such-folder" / "R.md")])
    assert "its folder " in (err := capsys.readouterr().err) and "no-such-folder does not exist" in err


def test_a_failing_model_is_reported_and_the_others_still_train(tiny, tmp_checkpoints, monkeypatch, capsys):
    real_train = pretrained.train

    def train(r, *args, **kwargs):
        if r.name == "tiny_a":
            raise FloatingPointError("the meta-loss became nan at step 3")
        return real_train(r, *args, **kwargs)

    monkeypatch.setattr(retrain, "train", train)
    assert retrain.main(["tiny_a", "tiny_b", "--device", "cpu"]) == 1
    assert set(current_store().read_manifest()) == {"tiny_b.pt"}
    captured = capsys.readouterr()
    assert "FAILED tiny_a: FloatingPointError: the meta-loss became nan at step 3" in captured.err
    assert "1 of 2 models trained" in captured.out


def test_results_md_sums_the_training_minutes_per_device():
    from tests.test_bad_input import _results_script

    results = _results_script()

    def row(name, device, minutes):
        return results.Row(name=name, family="sinusoid", method="MAML", task="sinusoid",
                           entry={"device": device, "minutes": minutes}, metric="mse")

    lines = results.training_time_section([row("a", "cpu", 1.5), row("b", "cuda", 4.0), row("c", "cpu", 30.25)])
    assert "- **cpu**: 2 models, 31.8 minutes in all; the longest: `c` 30.2, `a` 1.5." in lines
    assert "- **cuda**: 1 model, 4.0 minutes in all; the longest: `b` 4.0." in lines
    assert results.training_time_section([]) == []


def test_two_jobs_train_in_two_processes_and_share_the_manifest(tiny, tmp_checkpoints, capsys):
    """The parallel path: spawned workers train the parent's recipes into the parent's folder,
    each recording its entry under the manifest lock."""
    assert retrain.main(["tiny_a", "tiny_b", "--device", "cpu", "--jobs", "2"]) == 0
    manifest = current_store().read_manifest()
    assert set(manifest) == {"tiny_a.pt", "tiny_b.pt"}
    for name in ("tiny_a", "tiny_b"):
        entry = manifest[f"{name}.pt"]
        assert entry["sha256"] == sha256_of(tmp_checkpoints / f"{name}.pt")
        assert entry["recipe"]["iterations"] == tiny[name].iterations
    assert "2 of 2 models trained" in capsys.readouterr().out

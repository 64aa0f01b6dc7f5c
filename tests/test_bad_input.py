"""Bad input gets a clear error, never a silent wrong result or a lost file.

Each test reproduces one defect of the bad-input audit: it failed before the fix.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from lecture_utils import pretrained
from lecture_utils.blackbox import BlackBox
from lecture_utils.checkpoints import CheckpointStore, current_store, load_checkpoint, save_checkpoint, sha256_of
from lecture_utils.maml import MAML
from lecture_utils.models import Conv4, SineMLP
from lecture_utils.reptile import Reptile
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.tasks import TaskBatch
from lecture_utils.training import evaluate, meta_train
from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]


def sines(tasks=4, k=5, q=5, seed=0):
    return SinusoidTasks().sample(tasks, k, q, torch.Generator().manual_seed(seed))


def images(tasks=2, n_way=3, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(tasks, 2 * n_way, 1, size, size, generator=g)
    y = torch.arange(n_way).repeat(2).repeat(tasks, 1)
    return TaskBatch(x[:, :n_way], y[:, :n_way], x[:, n_way:], y[:, n_way:])


# --- silent wrong results -----------------------------------------------------------------------

@pytest.mark.parametrize("batching", ["loop", "vmap", "expand"])
@pytest.mark.parametrize("algorithm", [MAML, Reptile])
def test_support_and_query_with_different_task_counts_are_refused(algorithm, batching):
    torch.manual_seed(0)
    b = sines(tasks=4)
    uneven = TaskBatch(b.x_spt, b.y_spt, b.x_qry[:3], b.y_qry[:3])
    with pytest.raises(ValueError, match="same number of tasks"):
        algorithm("regression", batching=batching).objective(SineMLP(), uneven)


def test_a_sinusoid_batch_without_its_task_dimension_is_refused():
    one = sines(tasks=1)
    flat = TaskBatch(*(t[0] for t in one.tasks))  # [K, 1]: K one-point tasks before the fix
    with pytest.raises(ValueError, match=r"\[T, n, d\].*task dimension"):
        MAML("regression").objective(SineMLP(), flat)


def test_regression_targets_without_the_last_dimension_are_refused():
    b = sines()
    with pytest.raises(ValueError, match=r"y_spt must have shape \[T, n, d\]"):
        MAML("regression").objective(SineMLP(), TaskBatch(b.x_spt, b.y_spt[..., 0], b.x_qry, b.y_qry))


def test_classification_labels_must_be_class_ids():
    b = images()
    with pytest.raises(ValueError, match=r"y_qry must have shape \[T, n\] \(long\)"):
        MAML("classification").objective(Conv4(3, 8), TaskBatch(b.x_spt, b.y_spt, b.x_qry, b.y_qry.float()))
    with pytest.raises(ValueError, match=r"x_spt must have shape \[T, n, C, H, W\]"):
        BlackBox("classification").objective(None, TaskBatch(b.x_spt[0], b.y_spt, b.x_qry, b.y_qry))


def test_32x32_images_into_conv4_name_28x28():
    with pytest.raises(ValueError, match="28x28"):
        MAML("classification", inner_lr=0.4).objective(Conv4(3, 8), images(size=32))


@pytest.mark.parametrize("lr", [0, -0.01, float("nan"), float("inf"), "0.1", True])
@pytest.mark.parametrize("algorithm", [MAML, Reptile])
def test_inner_lr_must_be_a_positive_finite_number(algorithm, lr):
    with pytest.raises(ValueError, match="inner_lr must be a finite number > 0"):
        algorithm("regression", inner_lr=lr)


@pytest.mark.parametrize("steps", [1.5, "2", -1, None])
def test_inner_steps_must_be_an_integer(steps):
    with pytest.raises(ValueError, match="inner_steps must be an integer >= 0"):
        MAML("regression", inner_steps=steps)
    if steps is not None:  # steps=None at call time means the training value
        with pytest.raises(ValueError, match="inner_steps must be an integer >= 0"):
            MAML("regression").objective(SineMLP(), sines(), steps=steps)


def test_evaluate_refuses_non_finite_predictions_naming_the_inner_lr():
    torch.manual_seed(0)
    maml = MAML("classification", inner_lr=1e30)  # finite, but the adapted weights overflow
    with pytest.raises(FloatingPointError, match="inner lr 1e\\+30"):
        evaluate(Conv4(3, 8), maml, [images()])


def test_nan_in_the_support_inputs_blames_the_inputs_not_the_learning_rates():
    b = sines()
    x_spt = b.x_spt.clone()
    x_spt[0, 0, 0] = float("nan")
    broken = TaskBatch(x_spt, b.y_spt, b.x_qry, b.y_qry)
    with pytest.raises(ValueError, match="NaN or inf in x_spt"):
        meta_train(SineMLP(), MAML(), lambda g: broken, iterations=1, progress=False)
    with pytest.raises(ValueError, match="NaN or inf in x_spt"):
        evaluate(SineMLP(), MAML(), [broken])


class Exploding:
    """A stand-in algorithm whose meta-loss grows 10x per step (finite throughout)."""

    task = "regression"
    inner_lr = 1e4

    def __init__(self):
        self.scale = 1.0

    def objective(self, model, batch, steps=None):
        self.scale *= 10
        preds = model(batch.x_qry)
        return self.scale * ((preds - batch.y_qry) ** 2).mean(), preds


def test_an_exploding_meta_loss_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta_train(SineMLP(), Exploding(), lambda g: sines(), iterations=6, meta_lr=0.0, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "diverging" in messages[0] and "inner lr 10000" in messages[0], messages


# --- checkpoints and the manifest ---------------------------------------------------------------

def test_load_checkpoint_on_a_text_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="not a checkpoint written by save_checkpoint") as err:
        load_checkpoint(path, SineMLP())
    assert "weights_only=False" not in str(err.value)


def test_save_checkpoint_removes_the_part_files_a_killed_save_left(tmp_path):
    path = tmp_path / "sine.pt"
    stale = tmp_path / "sine.pt.abc123.part"  # what a kill during torch.save leaves behind
    stale.write_bytes(b"half")
    other = tmp_path / "other.pt.xyz.part"    # another target's: not ours to remove
    other.write_bytes(b"half")
    save_checkpoint(path, SineMLP(), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.pt.xyz.part", "sine.pt"]


def _recorded_pair(folder: Path):
    store = current_store()
    store.save("sine.pt", SineMLP(), {"command": "old"})
    return store.path("sine.pt"), store.path("sine.pt").read_bytes(), store.manifest.read_bytes()


def test_retraining_with_an_invalid_manifest_keeps_the_old_checkpoint(tmp_checkpoints):
    path, old_weights, _ = _recorded_pair(tmp_checkpoints)
    current_store().manifest.write_text('{"sine.pt": {"sha256": ')  # a broken manifest
    with pytest.raises(ValueError, match="not valid JSON.*git checkout checkpoints/manifest.json"):
        current_store().save("sine.pt", SineMLP(), {"command": "new"})
    assert path.read_bytes() == old_weights
    assert sorted(p.name for p in tmp_checkpoints.iterdir()) == ["manifest.json", "manifest.lock", "sine.pt"]


def test_an_error_while_saving_leaves_the_old_pair_intact(tmp_checkpoints, monkeypatch):
    path, old_weights, old_manifest = _recorded_pair(tmp_checkpoints)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(CheckpointStore, "_manifest_beside", fail)
    with pytest.raises(OSError, match="disk full"):
        current_store().save("sine.pt", SineMLP(), {"command": "new"})
    assert path.read_bytes() == old_weights and current_store().manifest.read_bytes() == old_manifest
    assert sorted(p.name for p in tmp_checkpoints.iterdir()) == ["manifest.json", "manifest.lock", "sine.pt"]


def test_save_changes_checkpoint_and_manifest_together(tmp_checkpoints):
    path, old_weights, _ = _recorded_pair(tmp_checkpoints)
    entry = current_store().save("sine.pt", SineMLP(), {"command": "new"})
    assert path.read_bytes() != old_weights
    assert entry["sha256"] == sha256_of(path) == current_store().read_manifest()["sine.pt"]["sha256"]
    assert sorted(p.name for p in tmp_checkpoints.iterdir()) == ["manifest.json", "manifest.lock", "sine.pt"]


def test_a_manifest_entry_without_sha256_gives_a_clear_error(tmp_checkpoints):
    current_store().manifest.write_text(json.dumps({"sine.pt": {"command": "x"}}))
    with pytest.raises(ValueError, match="'sine.pt' has no sha256.*git checkout"):
        current_store().read_manifest()


@pytest.mark.skipif(os.name == "nt", reason="plays Windows on a POSIX system")
def test_every_module_imports_and_the_manifest_records_without_fcntl(tmp_path):
    """fcntl exists only on POSIX systems: no module may need it at import, and on Windows the
    manifest lock uses msvcrt's byte-range lock instead (played here by the real fcntl)."""
    script = f"""
import importlib, pkgutil, sys, types
from pathlib import Path
import fcntl as posix
sys.modules["fcntl"] = None  # as on Windows: `import fcntl` raises ImportError
import lecture_utils
for info in pkgutil.walk_packages(lecture_utils.__path__, "lecture_utils."):
    try:
        importlib.import_module(info.name)
    except ImportError as err:
        if "ipywidgets" not in str(err) and "fcntl" in str(err):
            raise
# Only now (the standard library takes a present msvcrt for Windows): Windows' lock module.
msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_NBLCK, msvcrt.LK_UNLCK, msvcrt.calls = 2, 0, []
def locking(fd, mode, nbytes):
    msvcrt.calls.append(mode)
    posix.lockf(fd, posix.LOCK_EX | posix.LOCK_NB if mode == msvcrt.LK_NBLCK else posix.LOCK_UN, nbytes)
msvcrt.locking = locking
sys.modules["msvcrt"] = msvcrt
from lecture_utils.checkpoints import CheckpointStore, save_checkpoint
from lecture_utils.models import SineMLP
store = CheckpointStore(Path({str(tmp_path)!r}))
path = save_checkpoint(store.path("sine.pt"), SineMLP(), {{}})
store.record("sine.pt", {{"command": "test"}})
assert "sine.pt" in store.read_manifest()
assert msvcrt.calls == [msvcrt.LK_NBLCK, msvcrt.LK_UNLCK], msvcrt.calls
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


# --- command lines: every name checked before any work -------------------------------------------

@pytest.mark.parametrize("bad", [["misspelt"], ["--jobs", "0"]])
def test_retrain_cli_checks_its_arguments_before_any_work(monkeypatch, capsys, bad):
    from lecture_utils import retrain

    good = sorted(pretrained.RECIPES)[0]
    for slow in ("train", "seconds_per_iteration"):
        monkeypatch.setattr(retrain, slow, lambda *a, **k: pytest.fail("worked before checking the arguments"))
    with pytest.raises(SystemExit) as exit_:
        retrain.main([good, *bad])
    assert exit_.value.code != 0
    err = capsys.readouterr().err
    assert ("'misspelt'" in err and good in err) if bad == ["misspelt"] else "--jobs must be at least 1" in err


def _results_script():
    return load_script("results")


def test_results_only_with_a_misspelt_name_keeps_results_md(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    out.write_text("58 lines of results\n")
    with pytest.raises(SystemExit) as exit_:
        _results_script().main(["--only", "sine_maml_k55", "--out", str(out), "--device", "cpu"])
    assert exit_.value.code != 0
    assert out.read_text() == "58 lines of results\n"
    err = capsys.readouterr().err
    assert "'sine_maml_k55'" in err and "sine_maml_k5" in err

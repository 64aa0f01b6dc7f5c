"""The checkpoints folder and its manifest: one object locates them, no kill loses a model or
blocks the next save, the destination is checked before any work, and a damaged, stale or
mismatched checkpoint is refused with a clear error."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lecture_utils import pretrained, retrain
from lecture_utils.checkpoints import (CHECKPOINTS_ENV, REPO_CHECKPOINTS, CheckpointStore, current_store,
                                       load_checkpoint, save_checkpoint, sha256_of, using_store)
from lecture_utils.models import SineMLP
from lecture_utils.recipes import RECIPES

REPO = Path(__file__).resolve().parents[1]
COMMITTED = CheckpointStore(REPO_CHECKPOINTS)
SINE = "sine_maml_k10"


def copy_committed(folder: Path, *files: str) -> CheckpointStore:
    """Committed checkpoints and their manifest entries, copied into ``folder``."""
    entries = COMMITTED.read_manifest()
    for file in files:
        shutil.copy(COMMITTED.path(file), folder / file)
    (folder / "manifest.json").write_text(json.dumps({file: entries[file] for file in files}, indent=1))
    return CheckpointStore(folder)


def bytes_of_first_weight(state: dict) -> bytes:
    first = next(iter(state.values())).reshape(-1)[:2]
    return first.numpy().tobytes()


def flip_a_weight_byte(path: Path, weight_bytes: bytes) -> None:
    """Change the lowest mantissa bit of one stored float: a weight off by about 1e-7 of itself."""
    data = bytearray(path.read_bytes())
    at = data.find(weight_bytes)
    assert at >= 0, "the weight's bytes are not in the file"
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# --- one object locates the checkpoints ---------------------------------------------------------

def test_the_default_store_is_the_repository_checkpoints_folder(monkeypatch):
    monkeypatch.delenv(CHECKPOINTS_ENV, raising=False)
    store = current_store()
    assert store.folder == REPO / "checkpoints"
    assert store.manifest == REPO / "checkpoints" / "manifest.json"
    assert store.lock_file == REPO / "checkpoints" / "manifest.lock"
    assert pretrained.checkpoint_path(RECIPES[SINE]) == REPO / "checkpoints" / f"{SINE}.pt"


def test_an_environment_variable_or_a_with_block_points_the_store_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path / "a"))
    assert current_store().folder == tmp_path / "a"
    with using_store(tmp_path / "b") as store:
        assert current_store().folder == store.folder == tmp_path / "b"
        assert pretrained.checkpoint_path(RECIPES[SINE]) == tmp_path / "b" / f"{SINE}.pt"
    assert current_store().folder == tmp_path / "a"


def test_load_pretrained_uses_the_store_it_is_pointed_at(tmp_checkpoints):
    copy_committed(tmp_checkpoints, f"{SINE}.pt")   # a damaged copy: the repository's file is intact
    flip_a_weight_byte(tmp_checkpoints / f"{SINE}.pt",
                       bytes_of_first_weight(torch.load(COMMITTED.path(f"{SINE}.pt"), weights_only=True)["state_dict"]))
    with pytest.raises(RuntimeError, match="does not match"):
        pretrained.load_pretrained(SINE, device="cpu")


# --- a save is whole: killed at any moment, the pair is old or new --------------------------------

def versioned(version: int) -> SineMLP:
    model = SineMLP()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(version)
    return model


def check_pair(store: CheckpointStore, file: str) -> int:
    """Load ``file`` through the store (which completes an interrupted save); the weights, the
    file's checksum and its manifest entry must belong together. Returns the version loaded."""
    model = SineMLP()
    entry = store.load(file, model)
    assert entry["sha256"] == sha256_of(store.path(file)) == store.read_manifest()[file]["sha256"]
    assert all(torch.all(p == entry["version"]) for p in model.parameters()), "weights of another save"
    return entry["version"]


def save_killed_between_renames(monkeypatch):
    """Save version 1, then version 2 killed after the checkpoint's rename, before the manifest's."""
    store = current_store()
    store.save("sine.pt", versioned(1), {"version": 1})
    real_replace = os.replace

    def replace_then_die(source, target):
        real_replace(source, target)
        if Path(target).name == "sine.pt":
            raise KeyboardInterrupt("killed between the checkpoint's rename and the manifest's")

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.save("sine.pt", versioned(2), {"version": 2})
    monkeypatch.undo()
    return store


def test_a_save_interrupted_between_its_two_renames_is_completed_by_the_next_load(tmp_checkpoints, monkeypatch):
    store = save_killed_between_renames(monkeypatch)
    assert store.read_manifest()["sine.pt"]["version"] == 1      # the stale manifest the kill left
    assert check_pair(store, "sine.pt") == 2                      # the load completed the save
    assert store.read_manifest()["sine.pt"]["version"] == 2


def test_an_interrupted_save_in_a_folder_now_read_only_still_loads_with_a_warning(tmp_checkpoints, read_only,
                                                                                 monkeypatch):
    store = save_killed_between_renames(monkeypatch)
    (tmp_checkpoints / "manifest.lock").unlink()
    read_only(tmp_checkpoints)
    model = SineMLP()
    with pytest.warns(RuntimeWarning, match="lacks the entry of sine.pt.*could not be updated"):
        entry = store.load("sine.pt", model)
    assert entry["version"] == 2 and all(torch.all(p == 2) for p in model.parameters())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked child (POSIX)")
def test_saves_killed_at_random_moments_always_leave_a_matching_pair_and_no_blocking_lock(tmp_checkpoints):
    store = current_store()
    store.save("sine.pt", versioned(1), {"version": 1})
    rng, loaded, repaired = random.Random(0), [1], 0
    deadline = time.monotonic() + 120
    for kill in range(40):
        child = os.fork()
        if child == 0:                                            # the child: save the next versions
            try:
                for version in range(loaded[-1] + 1, loaded[-1] + 10_000):
                    store.save("sine.pt", versioned(version), {"version": version})
            finally:
                os._exit(3)                                       # never back into pytest
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        assert os.WIFSIGNALED(status), f"the saving child ended on its own (status {status}) before kill {kill}"
        repaired += store.read_manifest()["sine.pt"]["sha256"] != sha256_of(store.path("sine.pt"))
        version = check_pair(store, "sine.pt")
        assert version >= loaded[-1], f"kill {kill}: an older model ({version}) came back after {loaded[-1]}"
        loaded.append(version)
        assert time.monotonic() < deadline, "the kill loop took too long"
    start = time.monotonic()
    store.save("sine.pt", versioned(1000), {"version": 1000})     # no lock left behind to wait for
    assert time.monotonic() - start < 5
    assert check_pair(store, "sine.pt") == 1000 and loaded[-1] > 1, loaded
    print(f"{len(loaded) - 1} kills; {repaired} left the manifest behind the checkpoint, completed by the load")
    assert sorted(p.name for p in tmp_checkpoints.iterdir()) == ["manifest.json", "manifest.lock", "sine.pt"]


# --- the lock does not outlive its process -------------------------------------------------------

HOLD_THE_LOCK = """
import time
from lecture_utils.checkpoints import current_store
with current_store().lock():
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_lock_held_by_a_killed_process_does_not_block_the_next_save(tmp_checkpoints):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TimeoutError, match=rf"manifest.lock is held by another process \(pid {holder.pid}\)"):
            with current_store().lock(timeout=0.3):
                pass
    finally:
        holder.kill()                                            # SIGKILL: no cleanup code runs
        holder.wait()
        holder.stdout.close()
    assert (tmp_checkpoints / "manifest.lock").exists()          # the file may stay; its lock went with the process
    start = time.monotonic()
    current_store().save("sine.pt", SineMLP(), {})
    assert time.monotonic() - start < 5


def test_a_live_lock_times_out_with_a_clear_error(tmp_checkpoints):
    store = current_store()
    with store.lock():
        with pytest.raises(TimeoutError, match="manifest.lock is held by another process.*wait for it"):
            with CheckpointStore(tmp_checkpoints).lock(timeout=0.2):
                pass


# --- the destination is checked before any work ----------------------------------------------------

def test_retraining_into_a_read_only_folder_fails_before_training(tmp_checkpoints, read_only, monkeypatch):
    read_only(tmp_checkpoints)
    monkeypatch.setattr(pretrained, "train", lambda *a, **k: pytest.fail("trained before checking the folder"))
    with pytest.raises(PermissionError) as err:
        pretrained.load_pretrained(SINE, device="cpu", retrain=True)
    message = str(err.value)
    assert str(tmp_checkpoints) in message and CHECKPOINTS_ENV in message and "Nothing was trained" in message


def test_the_retrain_command_checks_the_folder_before_the_plan(tmp_checkpoints, read_only, monkeypatch, capsys):
    read_only(tmp_checkpoints)
    monkeypatch.setattr(retrain, "seconds_per_iteration", lambda *a, **k: pytest.fail("timed before checking"))
    with pytest.raises(SystemExit) as exit_:
        retrain.main([SINE, "--device", "cpu"])
    assert exit_.value.code != 0
    err = capsys.readouterr().err
    assert str(tmp_checkpoints) in err and CHECKPOINTS_ENV in err


def test_a_read_only_checkout_still_loads_its_checkpoints(tmp_checkpoints, read_only):
    copy_committed(tmp_checkpoints, f"{SINE}.pt")
    read_only(tmp_checkpoints)
    model, entry = pretrained.load_pretrained(SINE, device="cpu")
    assert entry["sha256"] == sha256_of(tmp_checkpoints / f"{SINE}.pt")


@pytest.mark.parametrize("target", ["a folder", "a read-only folder"])
def test_the_retrain_report_is_checked_before_any_work(tmp_checkpoints, tmp_path, read_only, monkeypatch,
                                                        capsys, target):
    report = tmp_path if target == "a folder" else read_only(tmp_path / "ro") / "R.md"
    monkeypatch.setattr(retrain, "seconds_per_iteration", lambda *a, **k: pytest.fail("timed before checking"))
    with pytest.raises(SystemExit):
        retrain.main([SINE, "--device", "cpu", "--report", str(report)])
    err = capsys.readouterr().err
    assert f"--report {report}" in err and ("is a folder" in err or "not writable" in err)


def _results():
    from tests.test_bad_input import _results_script

    return _results_script()


@pytest.mark.parametrize("target", ["a folder", "a read-only folder"])
def test_results_out_is_checked_before_evaluating(tmp_path, read_only, monkeypatch, capsys, target):
    results = _results()
    out = tmp_path if target == "a folder" else read_only(tmp_path / "ro") / "RESULTS.md"
    monkeypatch.setattr(results, "collect", lambda *a, **k: pytest.fail("evaluated before checking --out"))
    with pytest.raises(SystemExit):
        results.main(["--tasks", "4", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert f"--out {out}" in err and ("is a folder" in err or "not writable" in err)


# --- results.py --only updates its rows and keeps the rest -------------------------------------------

def row_of(text: str, first_cell: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| `{first_cell}` |"))


def test_results_only_updates_that_models_rows_and_keeps_the_others(tmp_checkpoints, tmp_path, capsys):
    results = _results()
    store = copy_committed(tmp_checkpoints, f"{SINE}.pt", "sine_pretrained.pt")
    out = tmp_path / "RESULTS.md"
    assert results.main(["--tasks", "4", "--device", "cpu", "--out", str(out)]) == 0
    before = out.read_text()
    entry = store.read_manifest()[f"{SINE}.pt"]
    new = store.save(f"{SINE}.pt", versioned(1), {k: v for k, v in entry.items() if k != "sha256"})
    assert results.main(["--tasks", "4", "--device", "cpu", "--out", str(out), "--only", SINE]) == 0
    after = out.read_text()
    assert row_of(after, "sine_pretrained") == row_of(before, "sine_pretrained")
    assert row_of(after, "sine_pretrained.pt") == row_of(before, "sine_pretrained.pt")
    assert new["sha256"][:12] in row_of(after, f"{SINE}.pt") and new["sha256"][:12] not in before
    assert row_of(after, SINE) != row_of(before, SINE)
    assert len(after.splitlines()) == len(before.splitlines())


def test_results_only_refuses_a_file_it_cannot_update_before_evaluating(tmp_path, monkeypatch, capsys):
    results = _results()
    out = tmp_path / "RESULTS.md"
    shutil.copy(REPO / "results" / "RESULTS.md", out)         # a copy; written without its data
    committed = out.read_text()
    out.write_text(committed.split("<!-- results data")[0])
    text = out.read_text()
    monkeypatch.setattr(results, "collect", lambda *a, **k: pytest.fail("evaluated before checking --out"))
    with pytest.raises(SystemExit):
        results.main(["--only", SINE, "--out", str(out), "--device", "cpu"])
    assert out.read_text() == text
    assert "run it once without --only" in capsys.readouterr().err


# --- a damaged, stale or mismatched checkpoint is refused clearly -------------------------------------

def test_load_checkpoint_refuses_a_flipped_weight_byte(tmp_path):
    model = SineMLP()
    path = save_checkpoint(tmp_path / "sine.pt", model, {"note": "x"})
    flip_a_weight_byte(path, bytes_of_first_weight(model.state_dict()))
    with pytest.raises(ValueError, match="sine.pt is damaged: its content does not match the checksum"):
        load_checkpoint(path, SineMLP())


def test_load_checkpoint_refuses_a_flipped_byte_in_a_committed_checkpoint(tmp_path):
    copy_committed(tmp_path, f"{SINE}.pt")                   # written before checkpoints held a checksum
    path = tmp_path / f"{SINE}.pt"
    flip_a_weight_byte(path, bytes_of_first_weight(torch.load(path, weights_only=True)["state_dict"]))
    with pytest.raises(RuntimeError, match=f"{SINE}.pt does not match .*manifest.json"):
        load_checkpoint(path, SineMLP())


def test_load_pretrained_refuses_a_flipped_byte_in_a_checkpoint_that_carries_its_entry(tmp_checkpoints):
    entry = {k: v for k, v in COMMITTED.read_manifest()[f"{SINE}.pt"].items() if k != "sha256"}
    model = versioned(3)
    current_store().save(f"{SINE}.pt", model, entry)
    flip_a_weight_byte(tmp_checkpoints / f"{SINE}.pt", bytes_of_first_weight(model.state_dict()))
    with pytest.raises(ValueError, match="damaged"):
        pretrained.load_pretrained(SINE, device="cpu")


@pytest.mark.parametrize("change", ["iterations", "inner_lr"])
def test_a_recipe_changed_since_training_is_refused_naming_the_change(tmp_checkpoints, monkeypatch, change):
    copy_committed(tmp_checkpoints, f"{SINE}.pt")
    r = RECIPES[SINE]
    changed = (replace(r, iterations=r.iterations + 1) if change == "iterations"
               else replace(r, algorithm=replace(r.algorithm, inner_lr=r.algorithm.inner_lr * 2)))
    monkeypatch.setitem(RECIPES, SINE, changed)
    with pytest.raises(RuntimeError, match="recipe changed") as err:
        pretrained.load_pretrained(SINE, device="cpu")
    message = str(err.value)
    assert change in message and f"python -m lecture_utils.retrain {SINE}" in message
    assert f"load_pretrained({SINE!r}, retrain=True)" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_loading_onto_cuda_without_cuda_says_cuda_is_not_available():
    with pytest.raises(RuntimeError, match="CUDA") as err:
        pretrained.load_pretrained(SINE, torch.device("cuda"))
    assert "damaged" not in str(err.value) and "'cpu'" in str(err.value)
    with pytest.raises(RuntimeError, match="CUDA is not available") as err:
        load_checkpoint(COMMITTED.path(f"{SINE}.pt"), SineMLP(), torch.device("cuda"))
    assert "damaged" not in str(err.value) and "'cpu'" in str(err.value)


@pytest.mark.parametrize("keep", [0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_a_truncated_checkpoint_gives_a_clear_error(tmp_path, keep):
    copy_committed(tmp_path, f"{SINE}.pt")
    path = tmp_path / f"{SINE}.pt"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=f"{SINE}.pt is truncated or damaged.*restore it"):
        load_checkpoint(path, SineMLP())

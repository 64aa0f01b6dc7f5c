"""The trained models the notebooks load, and how each one was made (load-or-train).

Every model a notebook needs is a ``Recipe`` (``recipes.py``): the network, the algorithm, the
task family, and the training budget. ``load_pretrained(name)`` loads the committed weights under
``checkpoints/`` after checking them against ``checkpoints/manifest.json``; with
``retrain=True`` (or when no checkpoint exists, e.g. for real Omniglot) it trains from
scratch with a progress bar and saves. Retrain from a terminal with ``python -m lecture_utils.retrain``
(``retrain.py``: a measured plan first, then one or several training processes; ``make reproduce``
retrains them all).

Character models are stored per data source (``omniglot-minimal``, the shipped archives, or
``omniglot``, a full download): weights trained on one are never used for the other.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from lecture_utils.checkpoints import load_checkpoint, sha256_of, write_checkpoint
from lecture_utils.device import get_device
from lecture_utils.episodes import EpisodeSampler, character_source, load_characters
from lecture_utils.files import temporary_beside
from lecture_utils.recipes import RECIPES, Recipe, UnknownModel, recipe
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.training import evaluate, mean_ci95, meta_train

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
MANIFEST = CHECKPOINTS / "manifest.json"
LOCK_TIMEOUT_S = 120.0


def data_source(r: Recipe) -> str:
    return "sinusoid" if r.family == "sinusoid" else character_source()


def checkpoint_path(r: Recipe) -> Path:
    suffix = "" if r.family == "sinusoid" else f"-{data_source(r)}"
    return CHECKPOINTS / f"{r.name}{suffix}.pt"


def retrain_command(name: str) -> str:
    """The terminal command that retrains ``name`` (recorded in its manifest entry)."""
    return f"python -m lecture_utils.retrain {name}"


def task_sampler(r: Recipe, split: str, device):
    """sample(generator) -> a meta-batch of this recipe's tasks from ``split``, on ``device``."""
    if r.family == "sinusoid":
        family = SinusoidTasks()
        return lambda g, n=r.meta_batch: family.sample(n, r.k_shot, r.k_query, g, device)
    sampler = EpisodeSampler(load_characters(split, verbose=False), r.n_way, r.k_shot, r.k_query)
    return lambda g, n=r.meta_batch: sampler.sample(n, g, device)


def held_out_score(r: Recipe, model: nn.Module, device, split: str = "val") -> dict:
    """The metric a checkpoint reached: query MSE (sinusoid) or accuracy (characters) after
    the training number of inner steps, mean and 95% interval over ``eval_tasks`` tasks."""
    sample = task_sampler(r, split, device)
    g = torch.Generator().manual_seed(10_000 + r.seed)
    batches = [sample(g, 50) for _ in range(math.ceil(r.eval_tasks / 50))]
    losses, accs = evaluate(model, r.algorithm, batches)
    values, metric = (losses, "query_mse") if accs is None else (accs, "query_accuracy")
    mean, half = mean_ci95(values)
    return {"metric": metric, "split": split, "tasks": len(values), "mean": round(mean, 4),
            "ci95": round(half, 4)}


def train(r: Recipe, device=None, progress: bool = True, position: int | None = None) -> tuple[nn.Module, dict]:
    """Train ``r`` from scratch; return the model and its manifest entry (``position``: the row
    of its progress bar when several are shown)."""
    device = get_device(device) if not isinstance(device, torch.device) else device
    model = r.build().to(device)
    start = time.perf_counter()
    meta_train(model, r.algorithm, task_sampler(r, "train", device), r.iterations, r.meta_lr,
               seed=r.seed, progress=progress, desc=r.name, position=position)
    minutes = (time.perf_counter() - start) / 60
    info = {"recipe": r.describe(), "data": data_source(r), "score": held_out_score(r, model, device),
            "command": retrain_command(r.name),
            "device": str(device), "minutes": round(minutes, 2), "torch": torch.__version__,
            "machine": platform.machine()}
    return model, info


def read_manifest() -> dict:
    """checkpoints/manifest.json as a dict (empty when there is none), checked: a JSON object
    whose entries each hold a ``sha256``."""
    if not MANIFEST.exists():
        return {}
    fix = f"restore it with `git checkout checkpoints/{MANIFEST.name}` (or delete it and retrain every model)"
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{MANIFEST} is not valid JSON ({err}); {fix}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{MANIFEST} must hold a JSON object (file name -> entry); {fix}")
    for name, entry in manifest.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ValueError(f"{MANIFEST}: the entry for {name!r} has no sha256 checksum; {fix}, "
                             f"or retrain it with `python -m lecture_utils.retrain NAME`")
    return manifest


@contextmanager
def manifest_lock(timeout: float | None = None):
    """Hold checkpoints/manifest.lock while the manifest is read and rewritten.

    The lock is a file created with O_CREAT | O_EXCL (atomic on every operating system), so no
    two processes update the manifest at once.
    """
    lock = MANIFEST.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (LOCK_TIMEOUT_S if timeout is None else timeout)
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{lock} is held by another process; if no other training is running "
                                   "(e.g. one was killed), delete that file and try again") from None
            time.sleep(0.1)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _write_manifest(manifest: dict) -> Path:
    """The new manifest in a temporary file beside it (moved into place by the caller)."""
    temporary = temporary_beside(MANIFEST)
    temporary.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return temporary


def record(path: Path, info: dict) -> None:
    """Add the entry of the existing checkpoint ``path`` (with its checksum) to the manifest."""
    with manifest_lock():
        manifest = read_manifest()
        manifest[path.name] = {"sha256": sha256_of(path), **info}
        os.replace(_write_manifest(manifest), MANIFEST)


def save_and_record(path: Path, model: nn.Module, checkpoint_info: dict, info: dict) -> dict:
    """Save ``model`` to ``path`` and record its entry: both change, or neither does.

    The new checkpoint and the new manifest are first written to temporary files; only when
    both are complete are they moved into place (checkpoint, then manifest). On any error
    before that, the old checkpoint and manifest stay as they were and the temporary files
    are removed.
    """
    temporaries = []
    try:
        with manifest_lock():
            manifest = read_manifest()              # an invalid manifest stops here: nothing changed
            new_weights = temporary_beside(path)
            temporaries.append(new_weights)
            write_checkpoint(new_weights, model, checkpoint_info)
            manifest[path.name] = entry = {"sha256": sha256_of(new_weights), **info}
            new_manifest = _write_manifest(manifest)
            temporaries.append(new_manifest)
            os.replace(new_weights, path)
            os.replace(new_manifest, MANIFEST)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return entry


def load_pretrained(name: str, device=None, retrain: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """The trained model ``name`` on ``device`` and its manifest entry.

    Loads the committed checkpoint (its checksum must match the manifest); trains and saves
    it when ``retrain`` is True or no checkpoint exists for the current data source.
    """
    r = recipe(name)
    device = get_device(device) if not isinstance(device, torch.device) else device
    path = checkpoint_path(r)
    if path.exists() and not retrain:
        entry = read_manifest().get(path.name)
        if entry is None or entry["sha256"] != sha256_of(path):
            raise RuntimeError(f"{path.name} does not match checkpoints/manifest.json; retrain it with "
                               f"load_pretrained({name!r}, retrain=True) or "
                               f"`{retrain_command(name)}`")
        model = r.build()
        load_checkpoint(path, model, device)
        return model, entry
    print(f"Training {name} from scratch on {device} ({r.iterations} meta-iterations)...")
    model, info = train(r, device, progress)
    return model, save_and_record(path, model, {"name": name}, info)


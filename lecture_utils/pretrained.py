"""The trained models the notebooks load, and how each one was made (load-or-train).

Every model a notebook needs is a ``Recipe`` (``recipes.py``): the network, the algorithm, the
task family, and the training budget. ``load_pretrained(name)`` loads its committed weights from
the checkpoint store (``checkpoints.current_store()``: ``checkpoints/`` in the repository), after
checking them against ``checkpoints/manifest.json`` and the recorded recipe against the registered
one. With ``retrain=True`` (or when no checkpoint exists, e.g. for real Omniglot) it trains from
scratch with a progress bar and saves; the folder is checked first, so no training is lost to a
folder that cannot be written. Retrain from a terminal with ``python -m lecture_utils.retrain``
(``retrain.py``; ``make reproduce`` retrains them all).

Character models are stored per data source (``omniglot-minimal``, the shipped archives, or
``omniglot``, a full download): weights trained on one are never used for the other.
"""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import torch
from torch import nn

from lecture_utils.checkpoints import CHECKPOINTS_ENV, current_store
from lecture_utils.device import get_device
from lecture_utils.episodes import EpisodeSampler, character_source, load_characters
from lecture_utils.recipes import RECIPES, Recipe, UnknownModel, recipe
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.training import evaluate, mean_ci95, meta_train

__all__ = ["RECIPES", "Recipe", "UnknownModel", "checkpoint_file", "checkpoint_path", "data_source",
           "held_out_score", "load_pretrained", "recipe", "retrain_command", "task_sampler", "train"]


def data_source(r: Recipe) -> str:
    return "sinusoid" if r.family == "sinusoid" else character_source()


def checkpoint_file(r: Recipe) -> str:
    """The file name of ``r``'s checkpoint for the current data source."""
    suffix = "" if r.family == "sinusoid" else f"-{data_source(r)}"
    return f"{r.name}{suffix}.pt"


def checkpoint_path(r: Recipe) -> Path:
    """Where ``r``'s checkpoint is in the current checkpoint store."""
    return current_store().path(checkpoint_file(r))


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


def held_out_score(r: Recipe, model: nn.Module, device, split: str = "val", sample=None) -> dict:
    """The metric a checkpoint reached: query MSE (sinusoid) or accuracy (characters) after
    the training number of inner steps, mean and 95% interval over ``eval_tasks`` tasks.
    ``sample``: ``task_sampler(r, split, device)`` made once by a caller that scores many times."""
    sample = sample or task_sampler(r, split, device)
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


def load_pretrained(name: str, device=None, retrain: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """The trained model ``name`` on ``device`` and its manifest entry.

    Loads the committed checkpoint: its checksum must match the manifest, and the recipe recorded
    there must be the registered one. Trains and saves it when ``retrain`` is True or no
    checkpoint exists for the current data source, after checking that it can be saved.
    """
    r = recipe(name)
    device = get_device(device, source="load_pretrained's device")
    store = current_store()
    file = checkpoint_file(r)
    fix = f"retrain it with load_pretrained({name!r}, retrain=True) or `{retrain_command(name)}`"
    if store.path(file).exists() and not retrain:
        model = r.build()
        entry = store.load(file, model, device, fix=fix)
        check_recipe(r, entry, file)
        return model, entry
    if not retrain and not store.manifest.exists():
        raise FileNotFoundError(
            f"no trained checkpoints at {store.folder}: the maml-lecture repository ships them in its "
            f"checkpoints/ folder. Clone the repository and install it from there (pip install -e .), or point "
            f"${CHECKPOINTS_ENV} at a copy of that folder; to train {name} here instead (slow on a CPU), "
            f"call load_pretrained({name!r}, retrain=True)")
    store.check_writable()  # before the training, not after it
    print(f"Training {name} from scratch on {device} ({r.iterations} meta-iterations)...")
    model, info = train(r, device, progress)
    return model, store.save(file, model, info)


def check_recipe(r: Recipe, entry: dict, file: str, fix: str | None = None) -> None:
    """Raise when the recipe recorded with a checkpoint (or a learning curve, ``curves.py``) differs
    from the registered recipe ``r``: it was trained for something else. ``fix`` replaces the default
    advice (retrain)."""
    recorded = json.loads(json.dumps(entry.get("recipe")))  # both as the manifest stores them (lists, ...)
    registered = json.loads(json.dumps(r.describe()))
    if recorded == registered:
        return
    changes = [f"{key}: {was!r} when trained, {now!r} now"
               for key, (was, now) in _differences(recorded or {}, registered).items()]
    fix = fix or f"retrain with `{retrain_command(r.name)}` or load_pretrained({r.name!r}, retrain=True)"
    raise RuntimeError(f"{file}: recipe changed since training ({'; '.join(changes[:4])}"
                       f"{'; ...' if len(changes) > 4 else ''}); {fix}")


def _differences(recorded: dict, registered: dict, prefix: str = "") -> dict:
    """{dotted key: (recorded value, registered value)} for every key where the two dicts differ."""
    out = {}
    for key in sorted(set(recorded) | set(registered), key=str):
        was, now = recorded.get(key, "(absent)"), registered.get(key, "(absent)")
        if isinstance(was, dict) and isinstance(now, dict):
            out.update(_differences(was, now, f"{prefix}{key}."))
        elif was != now:
            out[f"{prefix}{key}"] = (was, now)
    return out

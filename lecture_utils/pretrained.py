"""The trained models the notebooks load, and how each one was made (load-or-train).

Every model a notebook needs is a ``Recipe`` (``recipes.py``): the network, the algorithm, the
task family, and the training budget. ``load_pretrained(name)`` loads the committed weights under
``checkpoints/`` after checking them against ``checkpoints/manifest.json``; with
``retrain=True`` (or when no checkpoint exists, e.g. for real Omniglot) it trains from
scratch with a progress bar and saves. Retrain everything from the command line with::

    python -m lecture_utils.pretrained [NAME ...] [--device cuda]

Character models are stored per data source (``omniglot-minimal``, the shipped archives, or
``omniglot``, a full download): weights trained on one are never used for the other.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import math
import platform
import time
from pathlib import Path

import torch
from torch import nn

from lecture_utils.checkpoints import load_checkpoint, save_checkpoint, sha256_of
from lecture_utils.device import get_device
from lecture_utils.recipes import RECIPES, Recipe, UnknownModel, recipe
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.training import evaluate, mean_ci95, meta_train

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
MANIFEST = CHECKPOINTS / "manifest.json"


def data_source(r: Recipe) -> str:
    from lecture_utils.episodes import character_source
    return "sinusoid" if r.family == "sinusoid" else character_source()


def checkpoint_path(r: Recipe) -> Path:
    suffix = "" if r.family == "sinusoid" else f"-{data_source(r)}"
    return CHECKPOINTS / f"{r.name}{suffix}.pt"


def task_sampler(r: Recipe, split: str, device):
    """sample(generator) -> a meta-batch of this recipe's tasks from ``split``, on ``device``."""
    if r.family == "sinusoid":
        family = SinusoidTasks()
        return lambda g, n=r.meta_batch: family.sample(n, r.k_shot, r.k_query, g, device)
    from lecture_utils.episodes import EpisodeSampler, load_characters
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


def train(r: Recipe, device=None, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train ``r`` from scratch; return the model and its manifest entry."""
    device = get_device(device) if not isinstance(device, torch.device) else device
    model = r.build().to(device)
    start = time.perf_counter()
    meta_train(model, r.algorithm, task_sampler(r, "train", device), r.iterations, r.meta_lr,
               seed=r.seed, progress=progress, desc=r.name)
    minutes = (time.perf_counter() - start) / 60
    info = {"recipe": r.describe(), "data": data_source(r), "score": held_out_score(r, model, device),
            "command": f"python -m lecture_utils.pretrained {r.name}",
            "device": str(device), "minutes": round(minutes, 2), "torch": torch.__version__,
            "machine": platform.machine()}
    return model, info


def read_manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def record(path: Path, info: dict) -> None:
    """Add a checkpoint's entry (with its checksum) to the manifest, safely under concurrency."""
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    with open(MANIFEST.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest()
        manifest[path.name] = {"sha256": sha256_of(path), **info}
        tmp = MANIFEST.with_suffix(".json.part")
        tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
        tmp.replace(MANIFEST)


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
                               f"`python -m lecture_utils.pretrained {name}`")
        model = r.build()
        load_checkpoint(path, model, device)
        return model, entry
    print(f"Training {name} from scratch on {device} ({r.iterations} meta-iterations)...")
    model, info = train(r, device, progress)
    save_checkpoint(path, model, {"name": name})
    record(path, info)
    return model, read_manifest()[path.name]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Retrain the notebooks' models and update the manifest.")
    parser.add_argument("names", nargs="*", help=f"models to train (default: all): {', '.join(RECIPES)}")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    for name in args.names or list(RECIPES):
        _, entry = load_pretrained(name, args.device, retrain=True)
        score = entry["score"]
        print(f"{name}: {score['metric']} {score['mean']} ± {score['ci95']} "
              f"({entry['minutes']} min on {entry['device']})")


if __name__ == "__main__":
    main()

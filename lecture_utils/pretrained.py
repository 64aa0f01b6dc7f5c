"""The trained models the notebooks load, and how each one was made (load-or-train).

Every model a notebook needs is a ``Recipe``: the network, the algorithm, the task family,
and the training budget. ``load_pretrained(name)`` loads the committed weights under
``checkpoints/`` after checking them against ``checkpoints/manifest.json``; with
``retrain=True`` (or when no checkpoint exists, e.g. for real Omniglot) it trains from
scratch with a progress bar and saves. Retrain everything from the command line with::

    python -m lecture_utils.pretrained [NAME ...] [--device cuda]

Character models are stored per data source (``glyphs`` or ``omniglot``): weights trained on
the embedded glyphs are never used for real Omniglot, and vice versa.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from lecture_utils.blackbox import BlackBox, BlackBoxLearner
from lecture_utils.checkpoints import load_checkpoint, sha256_of, write_checkpoint
from lecture_utils.device import get_device
from lecture_utils.files import temporary_beside
from lecture_utils.maml import MAML
from lecture_utils.models import Conv4, SineMLP
from lecture_utils.reptile import Reptile
from lecture_utils.sinusoid import SinusoidTasks
from lecture_utils.training import evaluate, mean_ci95, meta_train

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
MANIFEST = CHECKPOINTS / "manifest.json"
LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Recipe:
    """Everything needed to train one checkpoint again, and nothing else."""

    name: str
    notebook: str
    algorithm: MAML | Reptile | BlackBox
    family: str                 # "sinusoid" or "characters"
    k_shot: int
    k_query: int
    n_way: int = 0              # characters only
    hidden: int = 64            # Conv4 channels (characters) or MLP width (sinusoid)
    meta_batch: int = 25
    iterations: int = 10_000
    meta_lr: float = 1e-3
    seed: int = 0
    eval_tasks: int = 500

    @property
    def is_blackbox(self) -> bool:
        return isinstance(self.algorithm, BlackBox)

    def build(self) -> nn.Module:
        torch.manual_seed(self.seed)
        if self.family == "sinusoid":
            return BlackBoxLearner.for_sinusoid(self.hidden) if self.is_blackbox else SineMLP(self.hidden)
        if self.is_blackbox:
            return BlackBoxLearner.for_characters(self.n_way, self.hidden)
        return Conv4(self.n_way, self.hidden)

    def describe(self) -> dict:
        config = asdict(self)
        config["algorithm"] = {"kind": type(self.algorithm).__name__, **asdict(self.algorithm)}
        return config


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


# --- Notebook 01: MAML on sinusoids (the MAML paper's settings), and the joint-training
# baseline (no inner step while training: plain regression on all tasks at once).
for _k in (5, 10, 20):
    register(Recipe(f"sine_maml_k{_k}", "01", MAML("regression", inner_lr=0.01, inner_steps=1),
                    "sinusoid", k_shot=_k, k_query=10, hidden=40, iterations=10_000))
register(Recipe("sine_pretrained", "01", MAML("regression", inner_lr=0.01, inner_steps=0),
                "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))


# --- Characters (embedded glyphs by default, real Omniglot when opted in): 5-way 1-shot
# MAML, the model notebooks 03, 04 and 05 all compare against. Conv4 with 32 channels and
# 3 query images per class keep CPU training to minutes; inner step as in the MAML paper.
register(Recipe("chars5_maml", "03", MAML("classification", inner_lr=0.4, inner_steps=1),
                "characters", k_shot=1, k_query=3, n_way=5, hidden=32, meta_batch=8,
                iterations=1500, eval_tasks=500))


# --- Notebook 03 (§2, 문제점과 대안): the two cheap approximations, each trained exactly like the
# second-order model it is compared with (same network, tasks, meta-batch, iterations, learning
# rates and seed); only ``approx`` differs. The 20-way pair is the "harder problem": 4 tasks per
# meta-batch and 1 query image per class keep each step as cheap as a 5-way step on the CPU.
for _approx, _short in (("first_order", "fomaml"), ("head_only", "anil")):
    register(Recipe(f"sine_{_short}_k10", "03", MAML("regression", inner_lr=0.01, inner_steps=1, approx=_approx),
                    "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))
    register(Recipe(f"chars5_{_short}", "03", MAML("classification", inner_lr=0.4, inner_steps=1, approx=_approx),
                    "characters", k_shot=1, k_query=3, n_way=5, hidden=32, meta_batch=8,
                    iterations=1500, eval_tasks=500))
for _approx, _short in (("second_order", "maml"), ("first_order", "fomaml")):
    register(Recipe(f"chars20_{_short}", "03", MAML("classification", inner_lr=0.4, inner_steps=1, approx=_approx),
                    "characters", k_shot=1, k_query=1, n_way=20, hidden=32, meta_batch=4,
                    iterations=1000, eval_tasks=500))


# --- Notebook 04 (Appendix B): black-box meta-learners trained like the MAML models they are
# compared with: same task family, episode shape, meta-batch, meta-iterations and meta lr as
# chars5_maml (Conv4-32 encoder, 5-way 1-shot, 3 queries/class, 8 tasks, 1500 steps) and as
# sine_maml_k10 (K=10, 10 queries, 25 tasks, 10k steps, encoder 1-40-40).
register(Recipe("chars5_blackbox", "04", BlackBox("classification"), "characters", k_shot=1,
                k_query=3, n_way=5, hidden=32, meta_batch=8, iterations=1500, eval_tasks=500))
register(Recipe("sine_blackbox", "04", BlackBox("regression"), "sinusoid", k_shot=10,
                k_query=10, hidden=40, iterations=10_000))


# --- Notebook 05 (Appendix C): Reptile, trained like the MAML models it is compared with
# (same tasks, episode shape, meta-batch, meta-iterations and Adam meta lr as sine_maml_k10 and
# chars5_maml). Reptile needs several inner steps (with one it is joint training): 5 steps of
# the MAML models' inner lr (a 150-step pilot on characters gave 0.1 and 0.4 the same accuracy
# within the 95% interval). Under Adam the meta lr sets the scale of epsilon. Reptile adapts on
# the support set only: the query set is for monitoring, never for updates.
register(Recipe("sine_reptile", "05", Reptile("regression", inner_lr=0.01, inner_steps=5),
                "sinusoid", k_shot=10, k_query=10, hidden=40, iterations=10_000))
register(Recipe("chars5_reptile", "05", Reptile("classification", inner_lr=0.4, inner_steps=5),
                "characters", k_shot=1, k_query=3, n_way=5, hidden=32, meta_batch=8,
                iterations=1500, eval_tasks=500))


class UnknownModel(KeyError):
    def __str__(self):
        return self.args[0]


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UnknownModel(f"no pretrained model named {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def data_source(r: Recipe) -> str:
    if r.family == "sinusoid":
        return "sinusoid"
    from lecture_utils.episodes import load_characters
    return load_characters("train", verbose=False).source


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
                             f"or retrain it with `python -m lecture_utils.pretrained NAME`")
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
                               f"`python -m lecture_utils.pretrained {name}`")
        model = r.build()
        load_checkpoint(path, model, device)
        return model, entry
    print(f"Training {name} from scratch on {device} ({r.iterations} meta-iterations)...")
    model, info = train(r, device, progress)
    return model, save_and_record(path, model, {"name": name}, info)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Retrain the notebooks' models and update the manifest.")
    parser.add_argument("names", nargs="*", help=f"models to train (default: all): {', '.join(RECIPES)}")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in RECIPES]
    if unknown:  # before any training: a typo in the last name must not cost the first one's minutes
        parser.error(f"unknown model(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(RECIPES))}")
    device = get_device(args.device)
    read_manifest()  # an invalid manifest fails now, not after training
    for name in args.names or list(RECIPES):
        _, entry = load_pretrained(name, device, retrain=True)
        score = entry["score"]
        print(f"{name}: {score['metric']} {score['mean']} ± {score['ci95']} "
              f"({entry['minutes']} min on {entry['device']})")


if __name__ == "__main__":
    main()

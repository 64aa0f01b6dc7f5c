#!/usr/bin/env python3
"""Validation accuracy against meta-iterations, recorded while a recipe trains again from scratch.

    .venv/bin/python scripts/learning_curves.py chars5_maml chars5_fomaml_a0.1 chars5_reptile

Each named recipe (``lecture_utils/recipes.py``) is meta-trained exactly as its checkpoint was
(network, tasks, meta-batch, iterations, learning rates, seed), and every ``--every`` iterations
(and before the first) the model is scored on the same ``--tasks`` validation tasks, after the
inner steps it trains with. The curve goes to ``results/learning_curves.json`` (the other
recipes' curves in that file are kept); the committed checkpoints are never touched. The run is
a re-run on this machine, so its final accuracy differs a little from the checkpoint's: the file
records both, with the device, the torch version and the minutes it took.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lecture_utils.files import atomic_write  # noqa: E402
from lecture_utils.pretrained import task_sampler  # noqa: E402
from lecture_utils.recipes import RECIPES, recipe  # noqa: E402
from lecture_utils.training import evaluate, mean_ci95, meta_train  # noqa: E402

DEFAULT_OUT = REPO / "results" / "learning_curves.json"
VAL_SEED = 30_000  # + the recipe's seed: neither training (seed) nor the manifest score (10_000 + seed) uses it


def curve(name: str, every: int, tasks: int, device: torch.device) -> dict:
    r = recipe(name)
    torch.manual_seed(r.seed)
    model = r.build().to(device)
    sample_val = task_sampler(r, "val", device)
    g = torch.Generator().manual_seed(VAL_SEED + r.seed)
    val_batches = [sample_val(g, min(50, tasks - i)) for i in range(0, tasks, 50)]

    def validation():
        losses, accs = evaluate(model, r.algorithm, val_batches)
        values = losses if accs is None else accs
        mean, half = mean_ci95(values)
        points.append({"mean": round(mean, 4), "ci95": round(half, 4)})
        return losses.mean().item(), None if accs is None else accs.mean().item()

    points: list[dict] = []
    validation()  # before the first meta-iteration
    start = time.perf_counter()
    history = meta_train(model, r.algorithm, task_sampler(r, "train", device), r.iterations, r.meta_lr,
                         seed=r.seed, validation=validation, val_every=every, desc=name)
    minutes = (time.perf_counter() - start) / 60
    return {"recipe": r.describe(), "metric": "query_accuracy" if r.family == "characters" else "query_mse",
            "split": "val", "tasks": tasks, "step": [0, *history.val_step],
            "mean": [p["mean"] for p in points], "ci95": [p["ci95"] for p in points],
            "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.machine(), "minutes": round(minutes, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="recipe names, e.g. chars5_maml chars5_reptile")
    parser.add_argument("--every", type=int, default=250, help="meta-iterations between two scores (250)")
    parser.add_argument("--tasks", type=int, default=200, help="validation tasks per score (200)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(sorted(RECIPES))}")
    if args.every < 1 or args.tasks < 2 or args.threads < 1:
        parser.error("--every and --threads must be >= 1 and --tasks >= 2")
    folder = args.out.parent
    if args.out.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        parser.error(f"cannot write {args.out}: give --out a file in an existing, writable folder")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    for name in args.names:
        result = curve(name, args.every, args.tasks, device)
        curves = json.loads(args.out.read_text()) if args.out.exists() else {}
        curves[name] = result
        atomic_write(args.out, lambda tmp: tmp.write_text(json.dumps(dict(sorted(curves.items())), indent=1) + "\n"))
        last = result["mean"][-1]
        print(f"{name}: {result['minutes']:.1f} min, final validation {last:.4f} -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

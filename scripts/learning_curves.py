#!/usr/bin/env python3
"""Validation score against meta-iterations, recorded while a recipe trains again from scratch.

    .venv/bin/python scripts/learning_curves.py chars5_reptile chars5_fomaml_a0.1 chars5_maml

Each named recipe (``lecture_utils/recipes.py``) is meta-trained exactly as its checkpoint was
(network, tasks, meta-batch, iterations, learning rates, seed; ``pretrained.train``), and every
``--every`` iterations, and before the first, the model gets the score its manifest entry records:
``pretrained.held_out_score``, the same validation tasks and the same inner steps. So the last point
of a curve is the committed model's own validation score when the re-run reproduces its weights; the
file records whether it did (the largest difference from the committed checkpoint's weights).
The curves go to ``results/learning_curves.json`` (curves of other recipes in that file are kept);
the committed checkpoints are never touched. Notebook 05 plots the file.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lecture_utils.files import atomic_write  # noqa: E402
from lecture_utils.curves import LEARNING_CURVES  # noqa: E402
from lecture_utils.pretrained import data_source, held_out_score, load_pretrained, task_sampler  # noqa: E402
from lecture_utils.recipes import RECIPES, recipe  # noqa: E402
from lecture_utils.training import meta_train  # noqa: E402

DEFAULT_OUT = LEARNING_CURVES


def curve(name: str, every: int, device: torch.device, compare: bool = True) -> dict:
    """Train recipe ``name`` from scratch and score it every ``every`` meta-iterations."""
    r = recipe(name)
    model = r.build().to(device)                 # seeds torch as pretrained.train does
    sample_val = task_sampler(r, "val", device)  # the data loaded once, not at every score
    scores: list[dict] = []

    def validation():
        scores.append(held_out_score(r, model, device, sample=sample_val))
        return scores[-1]["mean"], None

    validation()                                 # before the first meta-iteration
    start = time.perf_counter()
    history = meta_train(model, r.algorithm, task_sampler(r, "train", device), r.iterations, r.meta_lr,
                         seed=r.seed, validation=validation, val_every=every, desc=name)
    minutes = (time.perf_counter() - start) / 60
    result = {"recipe": r.describe(), "metric": scores[-1]["metric"], "data": data_source(r),
              "split": "val", "tasks": scores[-1]["tasks"], "step": [0, *history.val_step],
              "mean": [s["mean"] for s in scores], "ci95": [s["ci95"] for s in scores],
              "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.machine(), "minutes": round(minutes, 2)}
    if compare:
        committed, entry = load_pretrained(name, device)
        trained = model.state_dict()
        result["max_abs_diff_from_checkpoint"] = max(
            (trained[k].float() - v.float()).abs().max().item() for k, v in committed.state_dict().items())
        result["checkpoint_score"] = entry["score"]["mean"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="recipe names, e.g. chars5_maml chars5_reptile")
    parser.add_argument("--every", type=int, default=250, help="meta-iterations between two scores (250)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(sorted(RECIPES))}")
    if args.every < 1 or args.threads < 1:
        parser.error("--every and --threads must be at least 1")
    folder = args.out.parent
    if args.out.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        parser.error(f"cannot write {args.out}: give --out a file in an existing, writable folder")
    if args.out.exists():
        try:
            json.loads(args.out.read_text())
        except ValueError as error:
            parser.error(f"{args.out} is not a curves file ({error}): move it away or give another --out")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    for name in args.names:
        result = curve(name, args.every, device)
        curves = json.loads(args.out.read_text()) if args.out.exists() else {}
        curves[name] = result
        atomic_write(args.out, lambda tmp: tmp.write_text(json.dumps(dict(sorted(curves.items())), indent=1) + "\n"))
        print(f"{name}: {result.get('minutes')} min, final validation {result['mean'][-1]}, weights "
              f"differ from the checkpoint's by {result.get('max_abs_diff_from_checkpoint')} -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

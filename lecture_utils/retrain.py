"""Retrain the notebooks' models from the command line (``make reproduce``), with a measured plan first.

    python -m lecture_utils.retrain [NAME ...] [--device cuda] [--jobs 2] [--plan] [--report FILE]

Each model is trained from its recipe (``recipes.py``) by ``pretrained.train`` and saved with its
manifest entry in the checkpoint store (``checkpoints/``, or ``$MAML_LECTURE_CHECKPOINTS``). Every
argument, the checkpoints folder and the report's file are checked before any work: a typo in the
last name, a read-only folder or a report path that is a folder never costs a training.

Before any training, one meta-iteration of every chosen model is timed (a few iterations after a
warm-up, with the device and threads training will use) and the projected training minutes are
printed, longest first, with each model's share of the total and the projected wall-clock time.
``--plan`` stops there: an instructor sees what a retrain costs on this machine, and which models
dominate, before committing to it.

``--jobs N`` trains N models at once, in N processes with cores / N threads each (on a 2-core
laptop, ``--jobs 2`` with one thread each is about twice as fast as one process). Each model is
seeded on its own, so the order and the number of jobs do not change what it learns beyond the
last bits of rounding. The processes update ``checkpoints/manifest.json`` under its lock.

Progress: one bar for the whole set (models finished) and one per model in training.

``--report FILE`` (``make reproduce`` writes ``results/REPRODUCE.md``) records the run: each model's
training minutes, device and validation score beside the score of the checkpoint it replaced,
and the total.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lecture_utils.checkpoints import CHECKPOINTS_ENV, current_store
from lecture_utils.device import get_device
from lecture_utils.files import atomic_write, why_not_writable
from lecture_utils.pretrained import checkpoint_file, task_sampler, train
from lecture_utils.recipes import RECIPES, Recipe
from lecture_utils.training import meta_train

PLAN_ITERATIONS = 5  # timed meta-iterations per model, after one warm-up


def threads_per_job(jobs: int) -> int:
    """The CPU cores this process may use, shared out between ``jobs`` training processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // jobs)


def seconds_per_iteration(r: Recipe, device: torch.device, iterations: int = PLAN_ITERATIONS) -> float:
    """Median wall seconds of one meta-iteration of ``r`` (sampling the tasks included), timed
    with the training loop itself on a fresh model."""
    model = r.build().to(device)
    sample = task_sampler(r, "train", device)
    times = []
    for i in range(iterations + 1):
        start = time.perf_counter()
        meta_train(model, r.algorithm, sample, 1, r.meta_lr, seed=r.seed + i, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def wall_minutes(minutes: list[float], jobs: int) -> float:
    """Finishing time of ``minutes`` handed in order to ``jobs`` workers, each taking the next
    model when it is free (as ``--jobs`` does)."""
    free_at = [0.0] * jobs
    for m in minutes:
        free_at[free_at.index(min(free_at))] += m
    return max(free_at)


def plan(names: list[str], device: torch.device, jobs: int) -> list[str]:
    """Time every model, print the plan, and return the names longest first (the order that
    finishes soonest with several jobs)."""
    rows = []
    for name in tqdm(names, desc="timing each model", leave=False):
        r = RECIPES[name]
        seconds = seconds_per_iteration(r, device)
        rows.append((name, seconds, r.iterations, seconds * r.iterations / 60))
    rows.sort(key=lambda row: -row[3])
    total = sum(row[3] for row in rows)
    print(f"Plan on {device}, {torch.get_num_threads()} thread(s) per job, {jobs} job(s); "
          f"{PLAN_ITERATIONS} timed meta-iterations per model (training only; each model's final "
          "evaluation on 500 tasks is not included):")
    print(f"  {'model':<24} {'ms/iteration':>12} {'iterations':>10} {'minutes':>8} {'share':>6}")
    for name, seconds, iterations, minutes in rows:
        print(f"  {name:<24} {seconds * 1e3:12.0f} {iterations:10d} {minutes:8.1f} {minutes / total:6.0%}")
    wall = wall_minutes([row[3] for row in rows], jobs)
    print(f"  total {total:.0f} minutes of training; about {wall:.0f} minutes of wall-clock time with "
          f"{jobs} job(s)")
    return [row[0] for row in rows]


def train_and_save(r: Recipe, device: torch.device, position: int) -> dict:
    """Train ``r`` from scratch, save it and record it in the manifest; return its entry."""
    model, info = train(r, device, progress=True, position=position)
    return current_store().save(checkpoint_file(r), model, info)


_POSITION = 1  # this process's row for its progress bar (the overall bar is row 0)


def _start_worker(lock, counter, threads: int, checkpoints: Path) -> None:
    """In each worker process: its own progress-bar row, the shared bar lock, its threads, and
    the parent's checkpoints folder."""
    global _POSITION
    os.environ[CHECKPOINTS_ENV] = str(checkpoints)
    tqdm.set_lock(lock)
    with counter.get_lock():
        counter.value += 1
        _POSITION = counter.value
    torch.set_num_threads(threads)


def _retrain_in_worker(r: Recipe, device: str) -> dict:
    return train_and_save(r, torch.device(device), _POSITION)


def report(name: str, entry: dict) -> str:
    score = entry["score"]
    return (f"{name}: {score['metric']} {score['mean']} ± {score['ci95']} "
            f"({entry['minutes']} min on {entry['device']})")


def run(names: list[str], device: torch.device, jobs: int) -> dict[str, str]:
    """Train ``names`` (in this order) with ``jobs`` processes; return {name: error} for failures."""
    failures = {}
    overall = tqdm(total=len(names), desc="all models", unit="model", position=0)
    if jobs == 1:
        for name in names:
            try:
                overall.write(report(name, train_and_save(RECIPES[name], device, position=1)))
            except Exception as error:  # the others still train; the failure is reported at the end
                failures[name] = f"{type(error).__name__}: {error}"
            overall.update()
        overall.close()
        return failures
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    threads = threads_per_job(jobs)
    lock, counter = context.RLock(), context.Value("i", 0)
    tqdm.set_lock(lock)
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                             initargs=(lock, counter, threads, current_store().folder)) as pool:
        futures = {pool.submit(_retrain_in_worker, RECIPES[name], str(device)): name for name in names}
        for future in as_completed(futures):
            name = futures[future]
            try:
                overall.write(report(name, future.result()))
            except Exception as error:
                failures[name] = f"{type(error).__name__}: {error}"
            overall.update()
    overall.close()
    return failures


def score_text(entry: dict | None) -> str:
    if not entry or "score" not in entry:
        return "—"
    score = entry["score"]
    return f"{score['mean']:.4f} ± {score['ci95']:.4f}"


def metric_text(entry: dict | None) -> str:
    metric = (entry or {}).get("score", {}).get("metric", "")
    return {"query_accuracy": "accuracy (higher is better)", "query_mse": "MSE (lower is better)"}.get(metric, metric or "—")


def write_report(path: str, names: list[str], before: dict, after: dict, failures: dict, jobs: int,
                 threads: int, device: torch.device, wall: float) -> None:
    """The run as a Markdown table: minutes and validation score per model, beside the replaced checkpoint's."""
    rows = [f"# Retraining run: `python -m lecture_utils.retrain --jobs {jobs}`", "",
            f"Written by `lecture_utils/retrain.py` on {time.strftime('%Y-%m-%d')}: {device}, "
            f"{platform.processor() or platform.machine()}, {jobs} job(s) x {threads} thread(s), torch "
            f"{torch.__version__}. Minutes are each model's training time as its process measured it "
            "(its final validation on 500 tasks not included); wall-clock is the whole run.", "",
            "| Model | Minutes | Device | Validation metric | Score | Checkpoint it replaced |",
            "| --- | ---: | --- | --- | --- | --- |"]
    for name in names:
        file = checkpoint_file(RECIPES[name])
        entry = after.get(file) if name not in failures else None
        minutes = f"{entry['minutes']:.1f}" if entry else "failed"
        rows.append(f"| `{name}` | {minutes} | {entry['device'] if entry else '—'} | "
                    f"{metric_text(entry or before.get(file))} | {score_text(entry)} | {score_text(before.get(file))} |")
    total = sum(after[checkpoint_file(RECIPES[n])]["minutes"] for n in names if n not in failures)
    rows += ["", f"Total: {total:.1f} minutes of training, {wall:.1f} minutes of wall-clock time; "
             f"{len(names) - len(failures)} of {len(names)} models trained.", ""]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(rows)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Retrain the notebooks' models and update the manifest.")
    parser.add_argument("names", nargs="*", help=f"models to train (default: all): {', '.join(RECIPES)}")
    parser.add_argument("--device", default=None)
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once, each in its own process (default 1)")
    parser.add_argument("--plan", action="store_true", help="only time each model and print the plan")
    parser.add_argument("--report", default=None, help="write the run's minutes and scores to this Markdown file")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in RECIPES]
    if unknown:  # before any training: a typo in the last name must not cost the first one's minutes
        parser.error(f"unknown model(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(RECIPES))}")
    names = list(dict.fromkeys(args.names)) or list(RECIPES)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    jobs = min(args.jobs, len(names))
    problem = args.report and why_not_writable(Path(args.report).resolve())
    if problem:
        parser.error(f"--report {args.report}: {problem}; name a file in a writable folder")
    device = get_device(args.device, source="--device" if args.device else None)
    store = current_store()
    if not args.plan:
        try:
            store.check_writable()
        except PermissionError as error:
            parser.error(str(error))
    before = store.read_manifest()  # an invalid manifest fails now, not after training
    threads = torch.get_num_threads()
    if jobs > 1:
        torch.set_num_threads(threads_per_job(jobs))  # time each model as one of the jobs will run it
    try:
        ordered = plan(names, device, jobs)
    finally:
        torch.set_num_threads(threads)
    if args.plan:
        return 0
    start = time.perf_counter()
    failures = run(ordered if jobs > 1 else names, device, jobs)
    wall = (time.perf_counter() - start) / 60
    print(f"{len(names) - len(failures)} of {len(names)} models trained in {wall:.1f} minutes with {jobs} job(s)")
    if args.report:
        write_report(args.report, names, before, store.read_manifest(), failures, jobs,
                     threads_per_job(jobs) if jobs > 1 else threads, device, wall)
    for name, error in failures.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

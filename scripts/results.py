#!/usr/bin/env python3
"""Evaluate the committed checkpoints on held-out test tasks and write results/RESULTS.md:
our numbers with 95% intervals beside the papers', with the setting of each and every gap.

    .venv/bin/python scripts/results.py                  # make results: evaluate only (fast)
    .venv/bin/python scripts/results.py --tasks 100 --out /tmp/RESULTS.md
    .venv/bin/python scripts/results.py --only sine_maml_k10   # update that model's rows only
    make reproduce                                       # retrain every model, then this

Each registered recipe (``lecture_utils.recipes.RECIPES``) whose checkpoint exists for the
current data source is loaded with ``load_pretrained`` (which checks its checksum against
checkpoints/manifest.json) and evaluated with ``lecture_utils.training.evaluate`` on tasks the
training never saw: characters from the *test* split; sinusoids freshly drawn with a seed
that neither training nor the manifest's validation score used (the sinusoid family has no
split). Intervals are ``mean_ci95``: 1.96 standard errors over tasks. The setting of each
model (data, iterations, meta-batch, device, minutes) comes from its manifest entry.

``--only NAME ...`` evaluates just those models and keeps every other model's rows: the numbers
of each evaluated model are stored, at full precision, in a comment at the end of the file, and
the whole page (tables, differences, checks) is written again from them. A file that lacks that
comment is refused, before any evaluation. ``--out`` is checked before any evaluation too.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lecture_utils import papers

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "RESULTS.md"
DATA_MARK = "<!-- results data, read by scripts/results.py --only: "
EVAL_SEED = 20_000  # + recipe seed; training draws from seed, the manifest's score from 10_000 + seed
BATCH = 50

# The papers' numbers live once, in lecture_utils/papers.py (the notebooks quote the same list).
PAPER_OMNIGLOT = papers.OMNIGLOT
PAPER_OMNIGLOT_SETTING = ("full Omniglot (Lake et al. 2015, 1623 characters: 1200 for training), 28x28, "
                          "rotations as extra classes; Conv4 with 64 channels; tens of thousands of "
                          "meta-iterations on a GPU. MAML paper: 5-way trained with 1 inner step of α = 0.4 "
                          "(meta-batch 32) and tested with 3 steps; 20-way trained and tested with 5 steps of "
                          "α = 0.1 (meta-batch 16)")
# Where a notebook measures what a gap in the comparison below consists of: method -> a sentence.
GAP_NOTES = {"iMAML": " Notebook 06 (section 3) measures how far each model's inner steps get towards the inner"
                      " solution, which the implicit meta-gradient assumes reached.",
             "Reptile": " Notebook 05 (section 4) measures the gap: Reptile's validation accuracy stops rising after its"
                        " first 250 meta-iterations (results/learning_curves.json), and it adapts far better from 4"
                        " drawings per class, as in its meta-training, than from one."}
PAPER_TEST_STEPS = {5: 3, 20: 5}  # the MAML paper's test-time inner steps on Omniglot, by N
PAPER_SINUSOID = (
    "The MAML paper (Finn et al. 2017, sinusoid regression, Section 5.1 and its figure) gives no table: "
    "amplitude in [0.1, 5], phase in [0, pi], x in [-5, 5], K = 5 or 10 support points, a 1-40-40-1 "
    "MLP, one inner step with alpha = 0.01, meta-batch 25. Qualitatively: after meta-training, MAML fits "
    "a new sine from K points with one gradient step, keeps improving with more steps, and does far better "
    "than a model pretrained by joint regression on all tasks, which barely improves when fine-tuned.")
SINE_STEPS = (0, 1, 10)


@dataclass
class Row:
    """One evaluated checkpoint."""

    name: str
    family: str
    method: str
    task: str
    entry: dict
    metric: str                              # "accuracy" (%) or "mse"
    file: str = ""                           # the checkpoint's file name under checkpoints/
    by_steps: dict = field(default_factory=dict)  # steps (or None: black box) -> (mean, ci95)
    train_steps: int | None = None
    seconds: float = 0.0
    device: str = ""

    def as_json(self) -> dict:
        data = asdict(self)
        data["by_steps"] = [[steps, *value] for steps, value in self.by_steps.items()]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Row":
        by_steps = {steps: (mean, ci) for steps, mean, ci in data.pop("by_steps")}
        return cls(**data, by_steps=by_steps)


def method_of(recipe) -> str:
    algo = recipe.algorithm
    kind = type(algo).__name__
    if kind == "MAML":
        if algo.inner_steps == 0:
            return "pretrained (joint regression, no inner step)"
        if algo.head_only:
            return "first-order MAML, head only" if algo.first_order else "MAML, head only (ANIL)"
        return "first-order MAML" if algo.first_order else "MAML"
    if kind == "BlackBox":
        return "black-box meta-learner"
    if kind == "MetaSGD":
        return "first-order Meta-SGD" if algo.first_order else "Meta-SGD"
    return {"R2D2": "R2-D2", "IMAML": "iMAML"}.get(kind, kind)


def task_of(recipe) -> str:
    if recipe.family == "sinusoid":
        return f"sinusoid, K={recipe.k_shot}"
    return f"{recipe.n_way}-way {recipe.k_shot}-shot"


def setting_of(recipe, entry: dict, data: str) -> str:
    """Our setting, from the manifest entry (what was actually run) and the recipe."""
    cfg = entry.get("recipe", {})
    algo = cfg.get("algorithm", {})
    inner = ""
    if algo.get("kind") == "R2D2":
        inner = ", head by ridge regression (λ and scale learned)"
    elif "init_lr" in algo:
        inner = f", inner {algo['inner_steps']} step(s), lr learned per weight from {algo['init_lr']:g}"
    elif "inner_steps" in algo:
        inner = f", inner {algo['inner_steps']} step(s) lr {algo['inner_lr']:g}"
    if "lam" in algo:
        inner += f", λ = {algo['lam']:g}, {algo['cg_steps']} CG steps"
    net = (f"Conv4-{cfg.get('hidden')}" if recipe.family == "characters" and algo.get("kind") != "BlackBox"
           else f"width {cfg.get('hidden')}")
    source = {"omniglot-minimal": "Omniglot, minimal splits, 242 characters (182/24/36)",
              "omniglot": "Omniglot (full download)", "sinusoid": "sinusoids"}.get(data, data)
    return (f"{source}; {net}; {cfg.get('iterations')} it x {cfg.get('meta_batch')} tasks{inner}, "
            f"{cfg.get('k_query')} query/{'class' if recipe.family == 'characters' else 'task'}; "
            f"{entry.get('device', '?')}, {entry.get('minutes', '?')} min")


def evaluate_checkpoint(name: str, tasks: int, device) -> Row:
    """Load ``name`` through load_pretrained (checksum checked) and evaluate it on test tasks."""
    from lecture_utils.pretrained import RECIPES, checkpoint_file, load_pretrained, task_sampler
    from lecture_utils.training import evaluate_steps, mean_ci95

    import torch

    recipe = RECIPES[name]
    start = time.perf_counter()
    model, entry = load_pretrained(name, device=device, progress=False)
    model.eval()
    sample = task_sampler(recipe, "test", device)
    generator = torch.Generator().manual_seed(EVAL_SEED + recipe.seed)
    batches = [sample(generator, min(BATCH, tasks - i)) for i in range(0, tasks, BATCH)]
    kind = type(recipe.algorithm).__name__
    train_steps = getattr(recipe.algorithm, "inner_steps", None)
    if kind in ("BlackBox", "R2D2"):      # no inner steps to count: one prediction per task
        steps_list = [None]
    elif recipe.family == "sinusoid":
        steps_list = list(SINE_STEPS)
    else:
        steps_list = list(dict.fromkeys([train_steps, PAPER_TEST_STEPS.get(recipe.n_way, train_steps)]))
    row = Row(name, recipe.family, method_of(recipe), task_of(recipe), entry,
              "mse" if recipe.family == "sinusoid" else "accuracy", file=checkpoint_file(recipe),
              train_steps=train_steps, device=str(device))
    for steps, (losses, accs) in evaluate_steps(model, recipe.algorithm, batches, steps_list).items():
        values = losses if accs is None else accs * 100
        row.by_steps[steps] = mean_ci95(values)
    row.seconds = time.perf_counter() - start
    return row


def collect(tasks: int, device, only: list[str] | None = None, log=print) -> tuple[list[Row], list[str], list[str]]:
    """(evaluated rows, registered models without a checkpoint, manifest entries of no registered
    model); with ``only``, just those models are evaluated."""
    from lecture_utils.checkpoints import current_store
    from lecture_utils.pretrained import RECIPES, checkpoint_file

    store = current_store()
    rows, missing, used = [], [], set()
    for name, recipe in sorted(RECIPES.items(), key=lambda kv: (kv[1].notebook, kv[0])):
        file = checkpoint_file(recipe)  # names the data source without loading it
        if not store.path(file).exists():
            missing.append(f"`{name}` (notebook {recipe.notebook}): no `{file}` yet")
            continue
        used.add(file)
        if only and name not in only:
            continue
        log(f"evaluating {name} on {tasks} test tasks ...")
        rows.append(evaluate_checkpoint(name, tasks, device))
    others = [f"`{k}`" for k in sorted(store.read_manifest()) if k not in used]
    return rows, missing, others


# --- markdown ---------------------------------------------------------------------------------

def fmt(mean_ci: tuple[float, float] | None, metric: str) -> str:
    if mean_ci is None:
        return "—"
    mean, ci = mean_ci
    return f"{mean:.1f} ± {ci:.1f}%" if metric == "accuracy" else f"{mean:.3f} ± {ci:.3f}"


def paper_cell(key) -> str:
    if key not in PAPER_OMNIGLOT:
        return "— (no number in the papers quoted here)"
    value, ci, source = PAPER_OMNIGLOT[key]
    return f"{value}{f' ± {ci}' if ci is not None else ''}% ({source})"


def recorded(entry: dict) -> str:
    score = entry.get("score", {})
    if not score:
        return "—"
    metric = "accuracy" if "accuracy" in score.get("metric", "") else "mse"
    mean, ci = score["mean"], score["ci95"]
    if metric == "accuracy":
        mean, ci = mean * 100, ci * 100
    return f"{fmt((mean, ci), metric)} ({score.get('split')}, {score.get('tasks')} tasks)"


def alpha_of(r: Row) -> float | None:
    """The inner step size a method is compared at: its α, or for Meta-SGD the α it starts from."""
    algo = r.entry["recipe"]["algorithm"]
    return algo.get("inner_lr", algo.get("init_lr"))


def alpha_cell(r: Row) -> str:
    algo = r.entry["recipe"]["algorithm"]
    if "init_lr" in algo:
        return f"learned from {algo['init_lr']:g}"
    return "—" if algo.get("inner_lr") is None else f"{algo['inner_lr']:g}"


# Methods compared with MAML at the lecture's α = 0.4 whatever their own inner step size: their α
# (iMAML's, on a regularised inner problem with 5 steps) is not MAML's α.
COMPARED_AT_MAML_ALPHA = ("iMAML", "R2-D2")


def character_section(rows: list[Row], tasks: int) -> list[str]:
    chars = [r for r in rows if r.family == "characters"]
    out = ["## Few-shot character classification beside the papers' Omniglot numbers", ""]
    out += [f"Accuracy on {tasks} test tasks (characters of the test split, never seen in training), after "
            "the training number of inner steps and after the MAML paper's test-time steps (3 for 5-way, 5 for "
            "20-way; same α); ± is the 95% interval over tasks. Our data: the minimal Omniglot splits shipped "
            "in data/omniglot (242 characters, split by character 182/24/36 for train/val/test, 968 classes "
            f"with rotations). Paper setting: {PAPER_OMNIGLOT_SETTING}.", ""]
    if chars:
        out += ["| Model | Method | Task | α | Ours: training steps | Ours: paper's test steps | Manifest score "
                "| Paper (full Omniglot) | Our setting |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in chars:
            cells = []
            for steps, value in list(r.by_steps.items())[:2]:
                label = "" if steps is None else f" ({steps} step{'s' if steps != 1 else ''})"
                cells.append(fmt(value, "accuracy") + label)
            cells += ["—"] * (2 - len(cells))
            n_way, k_shot = r.entry["recipe"]["n_way"], r.entry["recipe"]["k_shot"]
            out.append(f"| `{r.name}` | {r.method} | {r.task} | {alpha_cell(r)} | "
                       f"{' | '.join(cells)} | {recorded(r.entry)} | {paper_cell((r.method, n_way, k_shot))} | "
                       f"{setting_of_row(r)} |")
    else:
        out.append("No character checkpoint exists yet for this data source: nothing of ours to compare.")
    ours = {(r.method, r.entry["recipe"]["n_way"], r.entry["recipe"]["k_shot"]) for r in chars}
    unmatched = [k for k in PAPER_OMNIGLOT if k not in ours]
    if unmatched:
        out += ["", "Paper numbers with no model of ours in the same setting (not reproduced here):", ""]
        out += [f"- {m}, {n}-way {k}-shot: {paper_cell((m, n, k))}" for m, n, k in unmatched]
    not_quoted = [f"- {method}: {why}" for method, why in papers.NOT_QUOTED.items() if method in {r.method for r in chars}]
    out += [""] + not_quoted if not_quoted else []
    differences = method_differences(chars)
    if differences:
        out += ["", "Since data, network width and training length differ, compare the differences between "
                "methods rather than the accuracies (percentage points, MAML minus the other method at the same "
                "α, after the training number of steps; the Reptile gap mixes two papers):", ""]
        out += differences
    return out + [""]


def method_differences(chars: list[Row]) -> list[str]:
    """MAML minus each other method at the same α, ours beside the papers', per task shape; then,
    per shape, the first-order gap at the α where first-order MAML does best."""
    compared = [(r.method, r.entry["recipe"]["n_way"], r.entry["recipe"]["k_shot"],
                 None if r.method in COMPARED_AT_MAML_ALPHA else alpha_of(r), r.name,
                 next(iter(r.by_steps.values()))[0]) for r in chars]
    acc = {(method, n, k, alpha): value for method, n, k, alpha, _, value in compared}
    shared = [(method, n, k, alpha) for method, n, k, alpha, _, _ in compared]
    lines = []
    for method, n, k, alpha, name, ours in sorted(compared, key=lambda row: (row[1], row[0], -(row[3] or 0), row[4])):
        base = acc.get(("MAML", n, k, alpha)) if alpha is not None else acc.get(("MAML", n, k, 0.4))
        if method == "MAML" or base is None:
            continue
        at = f" at α = {alpha:g}" if alpha is not None else " (MAML at α = 0.4)"
        which = f" (`{name}`)" if shared.count((method, n, k, alpha)) > 1 else ""   # several models of one method
        line = f"- {n}-way {k}-shot, MAML − {method}{which}{at}: ours {base - ours:+.1f} ({base:.1f} vs {ours:.1f}%)"
        paper_maml, paper_other = PAPER_OMNIGLOT.get(("MAML", n, k)), PAPER_OMNIGLOT.get((method, n, k))
        if paper_maml and paper_other:
            line += f"; papers {paper_maml[0] - paper_other[0]:+.1f} ({paper_maml[0]} vs {paper_other[0]}%)."
        else:
            line += "; no paper number to compare."
        lines.append(line + GAP_NOTES.get(method, ""))
    best = {}
    for (method, n, k, alpha), value in acc.items():
        if method == "first-order MAML" and ("MAML", n, k, alpha) in acc and value > best.get((n, k), (None, -1))[1]:
            best[(n, k)] = (alpha, value)
    if best:
        lines += ["", "The first-order gap at the α where first-order MAML does best (the like-for-like comparison):", ""]
    for (n, k), (alpha, value) in sorted(best.items()):
        maml = acc[("MAML", n, k, alpha)]
        paper = [PAPER_OMNIGLOT.get((m, n, k)) for m in ("MAML", "first-order MAML")]
        paper_text = f"; paper {paper[0][0] - paper[1][0]:+.1f}" if all(paper) else ""
        lines.append(f"- {n}-way {k}-shot, MAML − first-order MAML: ours {maml - value:+.1f} "
                     f"(α = {alpha:g}: {maml:.1f} vs {value:.1f}%){paper_text}.")
    return lines


def setting_of_row(r: Row) -> str:
    from lecture_utils.pretrained import RECIPES

    return setting_of(RECIPES[r.name], r.entry, r.entry.get("data", "?"))


def sinusoid_section(rows: list[Row], tasks: int) -> list[str]:
    sines = [r for r in rows if r.family == "sinusoid"]
    out = ["## Sinusoid regression beside the MAML paper's figure", "", PAPER_SINUSOID, ""]
    if not sines:
        return out + ["No sinusoid checkpoint exists yet.", ""]
    out += [f"Ours: query MSE on {tasks} freshly drawn sinusoid tasks (the family has no split: a seed that "
            "neither training nor validation used), after 0, 1 and 10 inner SGD steps on the K support points "
            "with the model's inner lr; ± is the 95% interval over tasks.", "",
            "| Model | Method | Task | 0 steps | 1 step | 10 steps | No steps (black box) | Manifest score | "
            "Our setting |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sines:
        cells = [fmt(r.by_steps.get(s), "mse") for s in (*SINE_STEPS, None)]
        out.append(f"| `{r.name}` | {r.method} | {r.task} | {' | '.join(cells)} | {recorded(r.entry)} | "
                   f"{setting_of_row(r)} |")
    out += ["", "The paper's qualitative claims, checked on our numbers:", ""]
    out += sinusoid_checks(sines)
    return out + [""]


def sinusoid_checks(sines: list[Row]) -> list[str]:
    lines = []
    maml = [r for r in sines if r.method == "MAML" and 1 in r.by_steps]
    base = next((r for r in sines if r.method.startswith("pretrained")), None)
    for r in maml:
        m0, m1, m10 = (r.by_steps[s][0] for s in SINE_STEPS)
        lines.append(f"- `{r.name}` ({r.task}): MSE {m0:.3f} -> {m1:.3f} -> {m10:.3f} after 0 -> 1 -> 10 steps: "
                     f"one step helps: {'yes' if m1 < m0 else 'NO'}; more steps keep improving: "
                     f"{'yes' if m10 < m1 else 'NO'}.")
    if base is not None and maml:
        b1, b10 = base.by_steps[1][0], base.by_steps[10][0]
        best = min(maml, key=lambda r: abs(r.entry["recipe"]["k_shot"] - base.entry["recipe"]["k_shot"]))
        a1 = best.by_steps[1][0]
        b0 = base.by_steps[0][0]
        lines.append(f"- Pretrained baseline `{base.name}` ({base.task}): {b0:.3f} -> {b1:.3f} -> "
                     f"{b10:.3f}; MAML `{best.name}` after 1 step ({a1:.3f}) beats it after 10 steps ({b10:.3f}): "
                     f"{'yes' if a1 < b10 else 'NO'}. The baseline does improve with fine-tuning here "
                     f"({100 * (b0 - b10) / b0:.0f}% lower after 10 steps), but stays far above MAML."
                     if b10 < b0 else
                     f"- Pretrained baseline `{base.name}` ({base.task}): {b0:.3f} -> {b1:.3f} -> {b10:.3f}; MAML "
                     f"`{best.name}` after 1 step ({a1:.3f}) beats it after 10 steps: {'yes' if a1 < b10 else 'NO'}.")
    elif base is None:
        lines.append("- No pretrained (joint-regression) baseline checkpoint: that comparison is not made.")
    return lines or ["- No MAML sinusoid checkpoint: nothing to check."]


def gaps_section(rows: list[Row], missing: list[str], others: list[str]) -> list[str]:
    chars = [r for r in rows if r.family == "characters"]
    out = ["## Gaps between our setting and the papers'", ""]
    data = {r.entry.get("data") for r in chars}
    if "omniglot-minimal" in data:
        out.append("- **Data.** Our character models train on the 182 training characters of the minimal "
                   "Omniglot splits (728 classes with rotations) and are tested on 36 held-out characters (144 "
                   "classes); the papers train on 1200 characters and test on 423. Fewer training characters and "
                   "fewer test classes: accuracies are close in kind, not directly comparable. For paper-scale "
                   "data, download the full set (`lecture_utils.omniglot.download_omniglot`), set "
                   "`MAML_LECTURE_OMNIGLOT` and run `make reproduce`.")
    widths = sorted({r.entry["recipe"]["hidden"] for r in chars})
    if widths and widths != [64]:
        out.append(f"- **Network.** Conv4 with {', '.join(map(str, widths))} channels (the papers: 64), to "
                   "keep CPU training to minutes.")
    iters = sorted({r.entry["recipe"]["iterations"] for r in chars})
    if iters:
        out.append(f"- **Training length.** {', '.join(map(str, iters))} meta-iterations of "
                   f"{', '.join(sorted({str(r.entry['recipe']['meta_batch']) for r in chars}))} tasks; the "
                   "papers train for tens of thousands of meta-iterations on a GPU.")
    if not any(r.entry["recipe"]["n_way"] == 20 for r in chars):
        out.append("- **20-way.** No 20-way model is trained here, so the papers' 20-way numbers (where the "
                   "first-order approximation loses most) have no counterpart.")
    queries = sorted({r.entry["recipe"]["k_query"] for r in chars})
    if queries:
        out.append(f"- **Episodes.** {', '.join(map(str, queries))} query image(s) per class in training; inner "
                   "steps and step sizes as listed per model (the same at test time).")
    if chars:
        out.append("- **Batch norm at test time.** Our Conv4 normalises each support or query set with its own "
                   "statistics (`BatchStatNorm2d`, no running averages): the query set is processed as a batch "
                   "(transductive), the setting of the Reptile numbers quoted.")
    out.append("- **Sinusoid.** The paper gives its sinusoid results only as a figure, so we compare trends, "
               "not numbers; our models are trained for the iterations listed above.")
    out.append("- **Intervals.** ± is 1.96 standard errors over test tasks (a normal interval), for ours and, "
               "as reported, for the MAML paper; the Reptile numbers are quoted without their interval.")
    if missing:
        out.append("- **Not trained yet** (no checkpoint for this data source, so not in the tables): "
                   + "; ".join(missing) + ".")
    if others:
        out.append("- **In the manifest but not evaluated** (another data source or no registered recipe): "
                   + ", ".join(others) + ".")
    return out + [""]


def training_time_section(rows: list[Row]) -> list[str]:
    """How long the evaluated checkpoints took to train, per device, from their manifest entries,
    and the models that dominate."""
    timed = [(r.name, r.entry) for r in rows if isinstance(r.entry.get("minutes"), (int, float))]
    if not timed:
        return []
    out = ["## Training time", "",
           "Each checkpoint's training minutes as recorded in its manifest entry (the final validation not "
           "included), per device:", ""]
    for device in sorted({e.get("device", "?") for _, e in timed}):
        mine = sorted(((e["minutes"], n) for n, e in timed if e.get("device", "?") == device), reverse=True)
        total = sum(m for m, _ in mine)
        top = ", ".join(f"`{n}` {m:.1f}" for m, n in mine[:3])
        models = f"{len(mine)} model{'s' if len(mine) > 1 else ''}"
        out.append(f"- **{device}**: {models}, {total:.1f} minutes in all; the longest: {top}.")
    out += ["", "`python -m lecture_utils.retrain --plan` measures what retraining every model would take on "
            "your machine, before any training; `make reproduce` writes the minutes and scores of its run to "
            "`results/REPRODUCE.md`.", ""]
    return out


def render(rows: list[Row], missing: list[str], others: list[str], tasks: int) -> str:
    import torch

    devices = ", ".join(sorted({r.device for r in rows})) or "no device"
    seconds = sum(r.seconds for r in rows)
    header = ["# Results: our checkpoints beside the papers", "",
              "Generated by `make results` (`scripts/results.py`) from `checkpoints/manifest.json`: each "
              f"checkpoint loaded with `load_pretrained` (checksum checked) and evaluated on {devices} with "
              f"torch {torch.__version__} in {seconds:.0f} s. `make reproduce` retrains every model from "
              "scratch (`python -m lecture_utils.retrain`, on a GPU when present) and regenerates this file. "
              "Do not edit by hand.", ""]
    checkpoints = ["## Checkpoints evaluated", "",
                   "| Checkpoint | sha256 (first 12) | Notebook | Command | Trained on | Minutes |",
                   "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        e = r.entry
        checkpoints.append(f"| `{r.file}` | `{e['sha256'][:12]}` | {e['recipe'].get('notebook')} | "
                           f"`{e.get('command')}` | {e.get('device')}, torch {e.get('torch')} | {e.get('minutes')} |")
    if not rows:
        checkpoints.append("| (none) | | | | | |")
    data = json.dumps({"tasks": tasks, "rows": [r.as_json() for r in rows]}).replace("-->", "--\\u003e")
    body = (header + character_section(rows, tasks) + sinusoid_section(rows, tasks)
            + gaps_section(rows, missing, others) + training_time_section(rows) + checkpoints + [""]
            + [f"{DATA_MARK}{data} -->", ""])
    return "\n".join(body)


def read_data(path: Path) -> dict | None:
    """The evaluated numbers stored at the end of a page this script wrote: {"tasks", "rows"}, or
    None when the page has none."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(DATA_MARK) and line.endswith(" -->"):
            data = json.loads(line[len(DATA_MARK):-len(" -->")])
            data["rows"] = [Row.from_json(row) for row in data["rows"]]
            return data
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500, help="test tasks per model (default 500)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: lecture_utils.device.get_device())")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT.relative_to(REPO)}")
    parser.add_argument("--only", nargs="*", help="evaluate only these models; the other models' rows in --out stay")
    args = parser.parse_args(argv)
    if args.tasks < 2:
        parser.error("--tasks must be at least 2 (an interval needs two values)")

    from lecture_utils.checkpoints import current_store
    from lecture_utils.device import get_device
    from lecture_utils.files import atomic_write, why_not_writable
    from lecture_utils.recipes import RECIPES

    unknown = [name for name in args.only or [] if name not in RECIPES]
    if unknown:  # before any work, and before results/RESULTS.md is touched
        parser.error(f"unknown model(s) for --only: {', '.join(map(repr, unknown))}; "
                     f"known: {', '.join(sorted(RECIPES))}")
    if args.only is not None and not args.only:
        parser.error("--only needs at least one model name")
    problem = why_not_writable(args.out.resolve())
    if problem:  # before any evaluation
        parser.error(f"--out {args.out}: {problem}; name a file in a writable folder")
    kept = []
    if args.only and args.out.exists():  # keep the other models' rows: they are stored in the page
        previous = read_data(args.out)
        if previous is None:
            parser.error(f"--only would replace {args.out} with the rows of {', '.join(args.only)} alone, and "
                         f"{args.out} does not store the other models' numbers (it was written before "
                         "results.py stored them); run it once without --only, or name a new file with --out")
        if previous["tasks"] != args.tasks:
            parser.error(f"{args.out} was evaluated on {previous['tasks']} tasks per model; use --tasks "
                         f"{previous['tasks']} so that its rows compare")
        kept = [row for row in previous["rows"] if row.name not in args.only]
    device = get_device(args.device, source="--device" if args.device else None)
    manifest = current_store().read_manifest()  # an invalid manifest fails here, with its own message
    changed = [row.name for row in kept if manifest.get(row.file, {}).get("sha256") != row.entry.get("sha256")]
    if changed:
        print(f"note: the checkpoints of {', '.join(changed)} changed since {args.out} was written; their rows "
              "are kept as they were (add them to --only to evaluate them again)", file=sys.stderr)
    start = time.perf_counter()
    rows, missing, others = collect(args.tasks, device, args.only, log=lambda m: print(m, flush=True))
    if args.only and not rows:
        print(f"none of {', '.join(args.only)} has a checkpoint for this data source: {args.out} left as it was",
              file=sys.stderr)
        return 1
    order = {name: (r.notebook, name) for name, r in RECIPES.items()}
    rows = sorted(kept + rows, key=lambda row: order.get(row.name, ("~", row.name)))
    text = render(rows, missing, others, args.tasks)
    atomic_write(args.out, lambda temporary: temporary.write_text(text, encoding="utf-8"))  # whole or not at all
    print(f"wrote {args.out} ({len(rows)} models evaluated, {len(missing)} without a checkpoint) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

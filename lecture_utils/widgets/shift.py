"""Notebook 04 (Appendix B): move shear and scale, see a distorted episode and how two learners do.

``shift_explorer`` builds the widget: sliders for shear, scale, the episode shown and MAML's inner
steps at test time (the black box has no such knob); every move redraws one figure with the
episode's support set (the labelled drawings the learners adapt to), its query drawings marked
right or wrong for each learner, and both learners' accuracy on that episode and on all the
held-out episodes given, at the chosen distortion. ``shift_report`` is the computation behind it
and ``draw_report`` the figure, both usable without widgets.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from lecture_utils.distortions import distort
from lecture_utils.tasks import TaskBatch
from lecture_utils.validation import check_task_index

SHEAR_LIMIT = 1.4  # radians; tan(1.4) = 5.8, beyond that the drawing leaves the canvas
SCALE_LIMITS = (0.25, 2.0)


def check_shift(shear: float, scale: float) -> str | None:
    """None if (shear, scale) is a distortion the explorer can show, else a message saying why not."""
    if not (isinstance(shear, (int, float)) and math.isfinite(shear) and abs(shear) <= SHEAR_LIMIT):
        return f"shear must be an angle in radians between {-SHEAR_LIMIT} and {SHEAR_LIMIT}, got {shear!r}."
    low, high = SCALE_LIMITS
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and low <= scale <= high):
        return f"scale must be a factor between {low} and {high}, got {scale!r}."
    return None


def distort_episodes(batch: TaskBatch, shear: float, scale: float) -> TaskBatch:
    """The same episodes with support and query drawings sheared and scaled; labels unchanged."""
    return TaskBatch(distort(batch.x_spt, shear=shear, scale=scale), batch.y_spt,
                     distort(batch.x_qry, shear=shear, scale=scale), batch.y_qry)


def shift_report(learners: dict, episodes: TaskBatch, shear: float, scale: float, steps: dict | None = None) -> dict:
    """Query predictions and accuracies of each learner on the distorted ``episodes``.

    ``learners`` maps a name to ``(model, algorithm)``; ``steps`` maps a name to the inner steps
    to use (MAML only; absent means the training value). All episodes are evaluated as one batch.
    Returns {"episodes": distorted TaskBatch, name: {"preds": [T, Q] labels, "accs": [T]}}.
    """
    problem = check_shift(shear, scale)
    if problem:
        raise ValueError(problem)
    shifted = distort_episodes(episodes, shear, scale)
    report = {"episodes": shifted}
    for name, (model, algorithm) in learners.items():
        with torch.no_grad():
            _, logits = algorithm.objective(model, shifted, steps=(steps or {}).get(name))
        preds = logits.detach().argmax(-1).cpu()
        report[name] = {"preds": preds, "accs": (preds == shifted.y_qry.cpu()).float().mean(1)}
    return report


def draw_report(report: dict, index: int, shear: float, scale: float, columns: int = 5, note: str = ""):
    """One figure: episode ``index``'s support row, then its queries, each titled with its true class
    and every learner's guess (first letter of its name, e.g. "M:3✓ B:1✗")."""
    shifted = report["episodes"]
    names = [k for k in report if k != "episodes"]
    x_spt, y_spt = shifted.x_spt[index].cpu(), shifted.y_spt[index].cpu()
    x_qry, y_qry = shifted.x_qry[index].cpu(), shifted.y_qry[index].cpu()
    order = torch.argsort(y_spt, stable=True)
    query_rows = math.ceil(len(x_qry) / columns)
    fig, axes = plt.subplots(1 + query_rows, columns, figsize=(columns * 1.25, (1 + query_rows) * 1.35),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    for col, i in enumerate(order[:columns].tolist()):
        axes[0, col].imshow(x_spt[i, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        axes[0, col].set_title(f"support: class {int(y_spt[i])}", fontsize=7)
        for side in axes[0, col].spines.values():
            side.set_visible(True)
            side.set_color("tab:blue")
    qorder = torch.argsort(y_qry, stable=True).tolist()
    for slot, j in enumerate(qorder):
        ax = axes[1 + slot // columns, slot % columns]
        ax.imshow(x_qry[j, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        marks = []
        for name in names:
            guess = int(report[name]["preds"][index, j])
            marks.append(f"{name[0].upper()}:{guess}{'✓' if guess == int(y_qry[j]) else '✗'}")
        ax.set_title(f"true {int(y_qry[j])}\n" + " ".join(marks), fontsize=6)
    lines = [f"shear {shear:+.2f} rad, scale {scale:.2f}" + (f", {note}" if note else "")
             + f"   (episode {index}: support row, then queries)"]
    for name in names:
        accs = report[name]["accs"]
        lines.append(f"{name}: {accs[index]:.0%} on this episode, {accs.mean():.1%} mean over "
                     f"{len(accs)} episodes")
    fig.suptitle("\n".join(lines), fontsize=8)
    fig.tight_layout()
    return fig


def shift_explorer(learners: dict, episodes: TaskBatch, stepper: str | None = "MAML", max_steps: int = 10):
    """Sliders for shear, scale, the episode shown and the inner steps of the learner named
    ``stepper`` (MAML; the black box has no such slider); each change redraws the figure.

    Returns the widget box; show it with ``display(shift_explorer(...))``.
    """
    import ipywidgets as widgets

    if stepper is not None and stepper not in learners:
        raise ValueError(f"stepper {stepper!r} is not one of the learners: {', '.join(learners)}")
    style = {"description_width": "80px"}
    controls = {
        "shear": widgets.FloatSlider(value=0.0, min=-SHEAR_LIMIT, max=SHEAR_LIMIT, step=0.05, style=style,
                                     description="shear (rad)", continuous_update=False),
        "scale": widgets.FloatSlider(value=1.0, min=SCALE_LIMITS[0], max=SCALE_LIMITS[1], step=0.05,
                                     style=style, description="scale", continuous_update=False),
        "index": widgets.IntSlider(value=0, min=0, max=len(episodes.x_spt) - 1, style=style,
                                   description="episode", continuous_update=False),
    }
    if stepper is not None:
        trained = getattr(learners[stepper][1], "inner_steps", 1)
        controls["steps"] = widgets.IntSlider(value=trained, min=0, max=max_steps, style=style,
                                              description=f"{stepper} steps", continuous_update=False)

    def redraw(shear, scale, index, steps=None):
        problem = check_shift(shear, scale)
        if problem:
            print("Cannot show this distortion:", problem)
            return
        try:
            index = check_task_index(index, len(episodes.x_spt))
        except ValueError as err:
            print("Cannot show this episode:", err)
            return
        if steps is not None and not 0 <= steps <= max_steps:
            print(f"Cannot take {steps} inner steps: choose 0 to {max_steps}.")
            return
        report = shift_report(learners, episodes, shear, scale, None if steps is None else {stepper: steps})
        draw_report(report, index, shear, scale, note="" if steps is None else f"{stepper}: {steps} inner step(s)")
        plt.show()

    out = widgets.interactive_output(redraw, controls)
    sliders = list(controls.values())
    return widgets.VBox([widgets.HBox(sliders[:2]), widgets.HBox(sliders[2:]), out])

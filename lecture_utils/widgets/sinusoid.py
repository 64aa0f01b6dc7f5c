"""The sinusoid adaptation explorer of notebook 01 (ipywidgets + matplotlib).

Each builder returns one widget to ``display``; every control redraws a matplotlib figure and a
text readout below it (``interactive_output`` with ``plt.show()``). Bad input never raises into the
notebook: the output area shows a one-line message saying what to change.

- ``parse_points``: "x values, comma-separated" text -> a list of floats, or a clear ValueError.
- ``sinusoid_adaptation_explorer``: notebook 01, section 7. Choose a sinusoid task (amplitude,
  phase), its support points (K random points, or your own x values) and the inner loop (alpha,
  steps); see MAML and the pretrained baseline before and after adaptation.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from lecture_utils.maml import adapt
from lecture_utils.models import forward_with, parameters_of
from lecture_utils.sinusoid import SinusoidTasks, sinusoid



def _slider_style(widgets) -> dict:
    return {"continuous_update": False, "style": {"description_width": "110px"},
            "layout": widgets.Layout(width="420px")}


def parse_points(text: str, low: float, high: float, max_points: int = 50) -> list[float]:
    """``"-4, 0.5, 2"`` -> ``[-4.0, 0.5, 2.0]``; a ValueError with a readable message otherwise.

    An empty text gives an empty list (the caller then draws random points).
    """
    text = (text or "").strip()
    if not text:
        return []
    points = []
    for i, item in enumerate(text.replace(";", ",").split(","), start=1):
        item = item.strip()
        if not item:
            raise ValueError(f"x value {i} is empty: write numbers separated by commas, e.g. -4, 0.5, 2")
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{item!r} is not a number: write numbers separated by commas, "
                             f"e.g. -4, 0.5, 2") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"x value {item} is outside [{low:g}, {high:g}], the input range of the tasks")
        points.append(value)
    if len(points) > max_points:
        raise ValueError(f"{len(points)} points given; use at most {max_points}")
    return points


def _controls():
    import ipywidgets as widgets  # only the builders need ipywidgets

    slider = _slider_style(widgets)
    return {
        "amplitude": widgets.FloatSlider(value=3.0, min=0.1, max=8.0, step=0.1, description="amplitude A",
                                         **slider),
        "phase": widgets.FloatSlider(value=1.0, min=0.0, max=round(2 * math.pi, 2), step=0.05,
                                     description="phase", **slider),
        "k_shot": widgets.IntSlider(value=10, min=1, max=20, description="K (random pts)", **slider),
        "inner_lr": widgets.FloatLogSlider(value=0.01, base=10, min=-3, max=-0.5, step=0.1,
                                           description="inner lr α", readout_format=".3f", **slider),
        "steps": widgets.IntSlider(value=1, min=0, max=10, description="inner steps", **slider),
        "points": widgets.Text(value="", placeholder="e.g. -4, -1.5, 0, 2.2 (empty: K random points)",
                               description="x values", continuous_update=False,
                               style={"description_width": "110px"}, layout=widgets.Layout(width="420px")),
        "seed": widgets.IntText(value=0, description="task seed", style={"description_width": "110px"},
                                layout=widgets.Layout(width="200px")),
    }


def sinusoid_adaptation_explorer(maml_model: nn.Module, baseline_model: nn.Module, *,
                                 tasks: SinusoidTasks | None = None, grid_points: int = 200):
    """MAML vs the pretrained baseline on one sinusoid task you choose, before and after adaptation.

    The support points are K random x values (the "resample" button draws new ones) or the x values
    typed into the text box (then K is ignored). Both models adapt with the same plain SGD inner
    loop (``lecture_utils.maml.adapt``, step size α, the chosen number of steps). The readout gives
    each model's mean squared error against the true curve on a dense grid over the input range.
    """
    import ipywidgets as widgets  # only the builders need ipywidgets

    tasks = tasks or SinusoidTasks()
    device = next(maml_model.parameters()).device
    low, high = tasks.x_range
    grid = torch.linspace(low, high, grid_points, device=device).reshape(-1, 1)
    models = {"MAML": maml_model, "pretrained baseline": baseline_model}
    controls = _controls()
    resample = widgets.Button(description="resample points", tooltip="draw K new random support points",
                              layout=widgets.Layout(width="200px"))

    def on_resample(_):
        controls["seed"].value += 1

    resample.on_click(on_resample)

    def draw(amplitude, phase, k_shot, inner_lr, steps, points, seed):
        try:
            typed = parse_points(points, low, high)
        except ValueError as err:
            print(f"Check the x values: {err}.")
            return
        generator = torch.Generator().manual_seed(int(seed))
        x_spt = typed or (low + (high - low) * torch.rand(k_shot, generator=generator)).tolist()
        batch = tasks.make(amplitude, phase, x_spt, k_query=1, generator=generator, device=device)
        xs, ys = batch.x_spt[0], batch.y_spt[0]
        truth = sinusoid(grid, amplitude, phase)

        notes = []
        if typed:
            notes.append(f"{len(typed)} typed support points (K slider ignored)")
        if not (tasks.amplitude[0] <= amplitude <= tasks.amplitude[1]) or not (tasks.phase[0] <= phase <= tasks.phase[1]):
            notes.append("this task lies outside the meta-training range (A in [0.1, 5], phase in [0, pi])")

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        lines = []
        for ax, (name, model) in zip(axes, models.items()):
            params = parameters_of(model)
            with torch.no_grad():  # torch.func.grad inside adapt still takes the inner gradients
                phi = adapt(model, params, xs, ys, loss_fn=F.mse_loss, steps=steps, inner_lr=inner_lr)
                before = forward_with(model, params, grid)
                after = forward_with(model, phi, grid)
            mse_before = F.mse_loss(before, truth).item()
            mse_after = F.mse_loss(after, truth).item()
            ax.plot(grid.cpu(), truth.cpu(), color="black", lw=2, label="true task")
            ax.plot(grid.cpu(), before.cpu(), "--", color="tab:gray", label="before adaptation (θ)")
            if math.isfinite(mse_after) and mse_after < 1e4:
                ax.plot(grid.cpu(), after.cpu(), color="tab:red" if name == "MAML" else "tab:blue",
                        label=f"after {steps} step{'s' if steps != 1 else ''} (φ)")
                lines.append(f"{name}: MSE {mse_before:.3f} before -> {mse_after:.3f} after {steps} step(s)")
            else:
                lines.append(f"{name}: adaptation diverged with α = {inner_lr:.3g}; lower α or the steps")
            ax.scatter(xs.cpu(), ys.cpu(), color="gold", edgecolor="black", zorder=5, s=40,
                       label=f"support set ({len(xs)} pts)")
            ax.set_title(name)
            ax.set_xlabel("x")
            ax.set_ylim(-max(6.0, amplitude + 1), max(6.0, amplitude + 1))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("y")
        axes[1].legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        plt.show()
        for line in lines + notes:
            print(line)

    output = widgets.interactive_output(draw, controls)
    c = controls
    left = widgets.VBox([c["amplitude"], c["phase"], c["k_shot"], widgets.HBox([resample, c["seed"]])])
    right = widgets.VBox([c["inner_lr"], c["steps"], c["points"]])
    return widgets.VBox([widgets.HBox([left, right]), output])

"""A one-shot drawing demo (notebook 05, in the spirit of OpenAI's Reptile demo).

Draw one example of each of N classes on small canvases, then a character to classify; a
meta-trained network adapts a few gradient steps on the drawn support set and shows its class
probabilities for the query drawing. Only ipywidgets and matplotlib: a canvas is a 14x14 grid
of buttons (click a cell to ink or erase it), scaled up to the 28x28 images the networks take.

The parts a test can call without a browser:

- ``glyph_to_canvas(image)``: a 28x28 drawing -> a 14x14 canvas of booleans (pre-filling);
- ``canvas_to_tensor(canvas)``: a canvas -> the [1, 28, 28] image the network sees;
- ``as_canvas_images(images)``: both steps at once for a batch of drawings;
- ``adapt_and_predict(model, algorithm, x_spt, y_spt, x_qry)``: the inner loop on the support
  set, then class probabilities for the query images.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lecture_utils.models import forward_with, parameters_of

CELLS = 14          # canvas cells per side
SIZE = 28           # the networks' image size
THRESHOLD = 0.3     # a cell is inked when the mean ink of its 2x2 pixels reaches this
INK, PAPER = "#222222", "#ffffff"


def glyph_to_canvas(image, cells: int = CELLS, threshold: float = THRESHOLD) -> np.ndarray:
    """A drawing [1, H, W] or [H, W] (ink 1, paper 0) -> a boolean canvas [cells, cells]."""
    image = torch.as_tensor(image, dtype=torch.float32).detach().cpu()
    if image.dim() == 3:
        image = image[0]
    if image.dim() != 2 or image.shape[0] % cells or image.shape[1] % cells:
        raise ValueError(f"expected one image of shape [H, W] or [1, H, W] with H and W multiples of "
                         f"{cells}, got {tuple(image.shape)}")
    pooled = F.adaptive_avg_pool2d(image[None, None], cells)[0, 0]
    return (pooled >= threshold).numpy()


def canvas_to_tensor(canvas, size: int = SIZE) -> Tensor:
    """A canvas [cells, cells] (bools or 0/1) -> the image [1, size, size] in [0, 1] a network sees.

    Each cell becomes a block of pixels; a bilinear resize softens the block edges a little, as
    the anti-aliased strokes of the training drawings are soft.
    """
    canvas = np.asarray(canvas)
    if canvas.ndim != 2 or canvas.shape[0] != canvas.shape[1]:
        raise ValueError(f"a canvas is a square 2-D grid, got shape {canvas.shape}")
    cells = torch.as_tensor(canvas.astype(np.float32))[None, None]
    image = F.interpolate(cells, size=(size, size), mode="bilinear", align_corners=False)
    return image[0].clamp(0, 1)


def as_canvas_images(images: Tensor, cells: int = CELLS) -> Tensor:
    """Drawings [..., 1, 28, 28] -> the same drawings as a canvas shows them (the network's view
    of a pre-filled canvas): pooled to ``cells`` x ``cells``, thresholded, scaled back up."""
    images = torch.as_tensor(images)
    shape, size = images.shape, images.shape[-1]
    if images.dim() < 3 or images.shape[-3] != 1 or images.shape[-2] != size or size % cells:
        raise ValueError(f"expected drawings [..., 1, H, H] with H a multiple of {cells}, got {tuple(shape)}")
    flat = images.reshape(-1, 1, size, size).float()
    inked = (F.adaptive_avg_pool2d(flat, cells) >= THRESHOLD).float()
    out = F.interpolate(inked, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return out.reshape(shape).to(images.dtype)


@torch.no_grad()
def adapt_and_predict(model: nn.Module, algorithm, x_spt: Tensor, y_spt: Tensor, x_qry: Tensor,
                      steps: int | None = None) -> Tensor:
    """Adapt ``model`` on one task's support set with ``algorithm``'s inner loop (``steps`` SGD
    steps; the training number when None), then return softmax probabilities [Q, N] for the
    query images. ``x_spt`` [S, 1, 28, 28], ``y_spt`` [S] class ids, ``x_qry`` [Q, 1, 28, 28]."""
    if steps is not None and steps < 0:
        raise ValueError(f"adaptation steps must be >= 0, got {steps}")
    if x_spt.dim() != 4 or x_qry.dim() != 4 or len(x_spt) != len(y_spt):
        raise ValueError(f"expected x_spt [S, 1, H, W], y_spt [S] and x_qry [Q, 1, H, W]; got "
                         f"{tuple(x_spt.shape)}, {tuple(y_spt.shape)} and {tuple(x_qry.shape)}")
    device = next(model.parameters()).device
    params = {n: p.detach() for n, p in parameters_of(model).items()}
    phi = algorithm.adapt(model, params, x_spt.to(device), y_spt.to(device), steps)
    return forward_with(model, phi, x_qry.to(device)).softmax(-1).cpu()


class Sketchpad:
    """The drawing widget: N support canvases (one per class) and one query canvas, edited on
    one shared 14x14 grid of buttons; a figure shows all canvases and the class probabilities.

    ``models``: label -> (model, algorithm), e.g. {"Reptile": (net, Reptile(...))}.
    ``examples``: [N + 1, 1, 28, 28] drawings that pre-fill the canvases (N support drawings,
    one per class, then the query); ``query_class``: the class of the pre-filled query, if known.
    """

    def __init__(self, models: dict, examples: Tensor, query_class: int | None = None,
                 max_steps: int = 10, cells: int = CELLS):
        if not models:
            raise ValueError("give at least one model: {label: (model, algorithm)}")
        if len(examples) < 2:
            raise ValueError("examples must hold at least one support drawing and the query drawing")
        self.models = dict(models)
        self.n_way = len(examples) - 1
        self.cells = cells
        self.examples = [glyph_to_canvas(image, cells) for image in examples]
        self.canvases = [canvas.copy() for canvas in self.examples]
        self.query_class = self.example_class = query_class
        self.slot = 0
        self.max_steps = max_steps
        self._widget = None

    # --- state a test can drive --------------------------------------------------------------
    def slot_names(self) -> list[str]:
        return [f"class {c}" for c in range(self.n_way)] + ["query"]

    def select(self, slot: int) -> None:
        if not 0 <= slot <= self.n_way:
            raise ValueError(f"slot must be in 0..{self.n_way} (the last one is the query), got {slot}")
        self.slot = slot
        self._sync_grid()

    def toggle(self, row: int, col: int) -> None:
        """Ink or erase one cell of the selected canvas."""
        if not (0 <= row < self.cells and 0 <= col < self.cells):
            raise ValueError(f"cell ({row}, {col}) is outside the {self.cells}x{self.cells} canvas")
        canvas = self.canvases[self.slot]
        canvas[row, col] = not canvas[row, col]
        if self.slot == self.n_way:
            self.query_class = None  # the query is now the student's own drawing
        self._sync_cell(row, col)

    def clear(self, everything: bool = False) -> None:
        for slot in (range(self.n_way + 1) if everything else [self.slot]):
            self.canvases[slot][:] = False
        if everything or self.slot == self.n_way:
            self.query_class = None
        self._sync_grid()

    def restore(self) -> None:
        """Put the pre-filled example back into every canvas."""
        self.canvases = [canvas.copy() for canvas in self.examples]
        self.query_class = self.example_class
        self._sync_grid()

    def images(self) -> Tensor:
        """All canvases as network inputs [N + 1, 1, 28, 28]."""
        return torch.stack([canvas_to_tensor(canvas) for canvas in self.canvases])

    def problem(self) -> str | None:
        """Why no prediction can be made yet (an empty canvas), or None."""
        empty = [name for name, canvas in zip(self.slot_names(), self.canvases) if not canvas.any()]
        if empty:
            return f"Draw something first in: {', '.join(empty)} (click cells of the grid)."
        return None

    def predict(self, label: str | None = None, steps: int | None = None) -> Tensor | None:
        """Class probabilities [N] for the query canvas, or None when a canvas is empty."""
        if self.problem() is not None:
            return None
        model, algorithm = self.models[label or next(iter(self.models))]
        images = self.images()
        y_spt = torch.arange(self.n_way)
        return adapt_and_predict(model, algorithm, images[:-1], y_spt, images[-1:], steps)[0]

    # --- the widget --------------------------------------------------------------------------
    @property
    def widget(self):
        if self._widget is None:
            self._widget = self._build()
            self.redraw()
        return self._widget

    def _build(self):
        import ipywidgets as w

        # one layout and two styles shared by all cells keep the widget (and a saved notebook) small
        cell = w.Layout(width="18px", height="18px", padding="0", margin="0", border="1px solid #dddddd")
        self._styles = {True: w.ButtonStyle(button_color=INK), False: w.ButtonStyle(button_color=PAPER)}
        self._buttons = []
        for r in range(self.cells):
            for c in range(self.cells):
                button = w.Button(layout=cell, style=self._styles[False])
                button.on_click(lambda _b, r=r, c=c: (self.toggle(r, c), self.redraw()))
                self._buttons.append(button)
        grid = w.GridBox(self._buttons, layout=w.Layout(
            grid_template_columns=f"repeat({self.cells}, 18px)", grid_auto_rows="18px", grid_gap="1px",
            width=f"{19 * self.cells}px", flex="0 0 auto", margin="8px 12px 0 0"))
        self._slot = w.ToggleButtons(options=[(name, slot) for slot, name in enumerate(self.slot_names())], value=self.slot,
                                     description="Edit:", style={"button_width": "68px"})
        self._slot.observe(lambda ch: (self.select(ch["new"]), self.redraw()), names="value")
        clear = w.Button(description="Clear this box", icon="eraser")
        clear.on_click(lambda _b: (self.clear(), self.redraw()))
        clear_all = w.Button(description="Clear all")
        clear_all.on_click(lambda _b: (self.clear(everything=True), self.redraw()))
        restore = w.Button(description="Restore examples")
        restore.on_click(lambda _b: (self.restore(), self.redraw()))
        self._model = w.Dropdown(options=list(self.models), description="Network:")
        self._steps = w.IntSlider(value=getattr(next(iter(self.models.values()))[1], "inner_steps", 1),
                                  min=0, max=self.max_steps, description="Adapt steps:",
                                  continuous_update=False, style={"description_width": "initial"})
        for control in (self._model, self._steps):
            control.observe(lambda _ch: self.redraw(), names="value")
        self._out = w.Output()
        self._sync_grid()
        controls = w.VBox([self._slot, w.HBox([clear, clear_all, restore]), w.HBox([self._model, self._steps])])
        return w.VBox([controls, w.HBox([grid, self._out])])

    def _sync_cell(self, row: int, col: int) -> None:
        if getattr(self, "_buttons", None):
            inked = bool(self.canvases[self.slot][row, col])
            button = self._buttons[row * self.cells + col]
            if button.style is not self._styles[inked]:
                button.style = self._styles[inked]

    def _sync_grid(self) -> None:
        if getattr(self, "_buttons", None):
            for r in range(self.cells):
                for c in range(self.cells):
                    self._sync_cell(r, c)

    def redraw(self) -> None:
        """Adapt on the drawn support set and draw the canvases and the probabilities."""
        import matplotlib.pyplot as plt

        if not getattr(self, "_out", None):
            return  # no widget built: nothing to draw on
        self._out.clear_output(wait=True)
        with self._out:
            problem = self.problem()
            if problem is not None:
                print(problem)
                return
            label, steps = self._model.value, self._steps.value
            probs = self.predict(label, steps)
            fig = plt.figure(figsize=(6.4, 3.6))
            grid = fig.add_gridspec(2, self.n_way + 1, height_ratios=(1, 1.6))
            for slot, (name, image) in enumerate(zip(self.slot_names(), self.images())):
                ax = fig.add_subplot(grid[0, slot])
                ax.imshow(image[0].numpy(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(name, fontsize=8, color="tab:red" if slot == self.slot else "black")
                ax.set_xticks([])
                ax.set_yticks([])
            ax = fig.add_subplot(grid[1, :])
            best = int(probs.argmax())
            colors = ["tab:orange" if c == best else "tab:blue" for c in range(self.n_way)]
            ax.bar(range(self.n_way), probs.numpy(), color=colors)
            ax.set_xticks(range(self.n_way), [f"class {c}" for c in range(self.n_way)])
            ax.set_ylim(0, 1)
            ax.set_ylabel("probability")
            truth = "" if self.query_class is None else f" (the example query is class {self.query_class})"
            plural = "" if steps == 1 else "s"
            ax.set_title(f"{label}, {steps} adaptation step{plural}: class {best}, p = {probs[best]:.2f}{truth}",
                         fontsize=9)
            fig.tight_layout()
            plt.show()

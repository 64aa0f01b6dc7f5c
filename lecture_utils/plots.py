"""Figures shared by the notebooks: one helper per kind of comparison.

``plot_curves`` draws mean curves with 95% confidence bands (error against inner steps,
accuracy against shift, cost against steps ...); ``show_images`` draws an episode's images.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def plot_curves(x, curves: dict, *, xlabel: str, ylabel: str, title: str | None = None, ax=None,
                logy: bool = False):
    """One line per entry of ``curves``: label -> (means, ci95 half-widths or None), over ``x``."""
    ax = ax or plt.subplots(figsize=(5.5, 3.6))[1]
    for label, (means, halves) in curves.items():
        means = torch.as_tensor(means, dtype=torch.float64)
        line, = ax.plot(x, means, marker="o", markersize=3, label=label)
        if halves is not None:
            halves = torch.as_tensor(halves, dtype=torch.float64)
            ax.fill_between(x, means - halves, means + halves, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def show_images(images, labels=None, *, columns: int = 10, title: str | None = None, size: float = 0.9):
    """A grid of [n, 1, H, W] images (ink bright), optionally titled by label."""
    images = torch.as_tensor(images).detach().cpu()
    n = len(images)
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(str(int(labels[i])), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

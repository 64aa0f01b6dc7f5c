"""Saving and loading trained weights, so a notebook can load instead of retrain.

Writes are atomic (a temporary file, then ``os.replace``; see ``files.atomic_write``), so an
interrupted save never leaves a half-written checkpoint, and the temporary files of a killed
save are removed by the next save. Loads use ``weights_only=True`` (no arbitrary code runs
from a file) and ``map_location`` (a checkpoint trained on a GPU opens on a laptop).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from lecture_utils.files import atomic_write, sha256_of

__all__ = ["load_checkpoint", "save_checkpoint", "sha256_of", "write_checkpoint"]


def write_checkpoint(path: str | Path, model: nn.Module, info: dict) -> None:
    """``torch.save`` the weights (on the CPU) and ``info`` to ``path`` directly (not atomic)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "info": info}, path)


def save_checkpoint(path: str | Path, model: nn.Module, info: dict) -> Path:
    """Save ``model``'s weights and a JSON-like ``info`` dict (config, metric, command)."""
    return atomic_write(path, lambda temporary: write_checkpoint(temporary, model, info))


def load_checkpoint(path: str | Path, model: nn.Module, device: torch.device | str = "cpu") -> dict:
    """Load weights saved by ``save_checkpoint`` into ``model`` (moved to ``device``); return info."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train the model (retrain=True) to create it")
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        blob, reason = None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    else:
        reason = "it holds no 'state_dict'"
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint, or it is damaged "
                         f"({reason}); restore it (`git checkout {path.name}` in checkpoints/) or "
                         "retrain the model")
    model.load_state_dict(blob["state_dict"])
    model.to(device)
    return blob.get("info", {})

"""Saving and loading trained weights, so a notebook can load instead of retrain.

Writes are atomic (a temporary file, then ``os.replace``), so an interrupted save never
leaves a half-written checkpoint. Loads use ``weights_only=True`` (no arbitrary code runs
from a file) and ``map_location`` (a checkpoint trained on a GPU opens on a laptop).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import nn


def save_checkpoint(path: str | Path, model: nn.Module, info: dict) -> Path:
    """Save ``model``'s weights and a JSON-like ``info`` dict (config, metric, command)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    os.close(fd)
    try:
        torch.save({"state_dict": state, "info": info}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str | Path, model: nn.Module, device: torch.device | str = "cpu") -> dict:
    """Load weights saved by ``save_checkpoint`` into ``model`` (moved to ``device``); return info."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train the model (retrain=True) to create it")
    blob = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(blob["state_dict"])
    model.to(device)
    return blob["info"]


def load_or_train(path: str | Path, model: nn.Module, train: Callable[[], dict], *,
                  retrain: bool = False, device: torch.device | str = "cpu") -> dict:
    """Load ``path`` into ``model`` if it exists and ``retrain`` is False; otherwise call
    ``train()`` (which trains ``model`` in place and returns its info dict) and save."""
    if Path(path).exists() and not retrain:
        info = load_checkpoint(path, model, device)
        print(f"Loaded {Path(path).name} (trained with: {info.get('command', 'see manifest')}).")
        return info
    info = train()
    save_checkpoint(path, model, info)
    print(f"Trained and saved {Path(path).name}.")
    return info


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""Where the tensors live, and how every run is made repeatable.

One device helper and one seeding helper, used by every notebook (00_setup shows both).
The device is CUDA when present, then Apple MPS, then the CPU; the environment
variable ``MAML_LECTURE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the choice.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "MAML_LECTURE_DEVICE"


def get_device(preferred: str | None = None) -> torch.device:
    """Return the device to compute on.

    Order: the ``preferred`` argument, then ``$MAML_LECTURE_DEVICE``, then CUDA, MPS, CPU.
    Asking for a device that is not there raises a clear error instead of failing later
    with a tensor-placement message.
    """
    name = preferred or os.environ.get(DEVICE_ENV, "").strip()
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={name!r} asks for CUDA, but no CUDA GPU is visible; "
                               f"unset it or use 'cpu'.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"{DEVICE_ENV}={name!r} asks for Apple MPS, which is not available here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a fresh CPU generator.

    With ``deterministic=True`` PyTorch is asked for deterministic kernels (cuDNN included), so a
    CPU run prints the same numbers every time; on a GPU a few kernels may still differ in the
    last bits, which is why nbval compares outputs on the CPU only.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device | None = None) -> str:
    """One line naming the device, for the top of every notebook."""
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)

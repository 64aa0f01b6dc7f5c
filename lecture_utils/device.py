"""Where the tensors live, and how every run is made repeatable.

One device helper and one seeding helper, used by every notebook (00_setup shows both).
The device is CUDA when present, then Apple MPS, then the CPU; the environment
variable ``MAML_LECTURE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the choice.

Second-order MAML (lecture §1, Appendix A) differentiates through a gradient, and accelerators
have a history of missing or wrong double-backward kernels (Apple MPS above all). So an
accelerator is used only after a small probe computed the MAML meta-gradient there exactly as
the CPU does (``probe.py``). Set ``MAML_LECTURE_PROBE=0`` to skip the probe.

This module is the ground floor: it imports nothing from the package at load time. The probe
needs the models and MAML, so ``get_device`` imports it only when an accelerator is in question
(never on a CPU-only machine).
"""
from __future__ import annotations

import os
import random
import re
import sys

import numpy as np
import torch

from lecture_utils.validation import check_seed

DEVICE_ENV = "MAML_LECTURE_DEVICE"
PROBE_ENV = "MAML_LECTURE_PROBE"
CHOICES = "cpu, cuda, cuda:N (e.g. cuda:1), mps"

_fallback: str | None = None  # why the automatic choice fell back to the CPU, for describe_device


def parse_device(name: str | torch.device, source: str | None = None) -> torch.device:
    """``name`` as a torch.device, for the names this lecture supports: cpu, cuda, cuda:N, mps.

    Upper case is accepted (``CPU`` is ``cpu``). Anything else (a typo, ``meta``, ``xla``, ...)
    raises a ValueError that names ``source``, where the value came from.
    """
    text = str(name).strip().lower()
    if text in ("cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", text):
        return torch.device(text)
    raise ValueError(f"{_label(name, source)} is not a device this lecture can compute on; "
                     f"choose one of {CHOICES}.")


def _label(name, source: str | None) -> str:
    """Where a device name came from, for error messages: ``--device 'cuda'``, ..."""
    if source is None:
        return f"device {str(name)!r} (given to get_device(), e.g. by a --device option)"
    return f"{source} {str(name)!r}"


def get_device(preferred: str | torch.device | None = None, *, source: str | None = None) -> torch.device:
    """Return the device to compute on.

    Order: the ``preferred`` argument, then ``$MAML_LECTURE_DEVICE``, then CUDA, MPS, CPU.
    ``source`` names where ``preferred`` came from in error messages (a script passes
    ``"--device"``). A device asked for that is not there, or that fails the second-order probe,
    raises a clear error naming where the request came from. A device chosen automatically that
    fails the probe is skipped, with one printed line saying why.
    """
    env = os.environ.get(DEVICE_ENV, "").strip()
    if preferred is not None and str(preferred).strip():
        name, where = preferred, source
    elif env:
        name, where = env, f"${DEVICE_ENV}"
    else:
        return _automatic_device()
    device = parse_device(name, where)
    where = _label(name, where)
    if device.type == "cpu":
        return device
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{where} asks for CUDA, but no CUDA GPU is visible; "
                           f"use 'cpu' instead.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise RuntimeError(f"{where} asks for {device}, but only {torch.cuda.device_count()} "
                           f"CUDA GPU(s) are visible (cuda:0 ...).")
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(f"{where} asks for Apple MPS, which is not available here; "
                           f"use 'cpu' instead.")
    if _probe_enabled():
        from lecture_utils.probe import probe_device  # only for an accelerator: see the module docstring

        reason = probe_device(device)
        if reason:
            raise RuntimeError(f"{where} asks for {device}, but {reason}. "
                               f"Use 'cpu' instead, or set {PROBE_ENV}=0 to use {device} unchecked.")
    return device


def _automatic_device() -> torch.device:
    global _fallback
    candidates = [torch.device("cuda")] if torch.cuda.is_available() else []
    candidates += [torch.device("mps")] if _mps_available() else []
    for device in candidates:
        if not _probe_enabled():
            return device
        from lecture_utils.probe import already_probed, probe_device  # see the module docstring

        first_time = not already_probed(device)
        reason = probe_device(device)
        if reason is None:
            return device
        _fallback = f"{device} not used: {reason}"
        if first_time:
            print(f"lecture_utils: computing on the CPU, not {device}: {reason}. To use {device} anyway, "
                  f"set {DEVICE_ENV}={device} {PROBE_ENV}=0.", file=sys.stderr)
    return torch.device("cpu")


def _probe_enabled() -> bool:
    value = os.environ.get(PROBE_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"${PROBE_ENV}={value!r}: use 1 (probe accelerators, the default) or 0 (skip the probe).")
    return value != "0"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


# --- seeding and the one-line description ------------------------------------------------------

def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a fresh CPU generator.

    With ``deterministic=True`` PyTorch is asked for deterministic kernels (cuDNN included) and
    for full float32 on NVIDIA GPUs (no TF32, which torch allows for cuDNN convolutions by
    default: on the lent H200 the Conv4 meta-gradient then differed from the per-task loop by
    1.3e-2 of its largest entry, too much for second-order MAML), so a CPU run prints the same
    numbers every time; on a GPU a few kernels may still differ in the last bits, which is why
    nbval compares outputs on the CPU only.
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device | None = None) -> str:
    """One line naming the device, for the top of every notebook; on the CPU after an
    accelerator failed the probe, also why it was not used."""
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        line = f"cpu ({torch.get_num_threads()} threads)"
        return f"{line}; {_fallback}" if _fallback else line
    return str(device)

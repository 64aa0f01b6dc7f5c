"""Where the tensors live, and how every run is made repeatable.

One device helper and one seeding helper, used by every notebook (00_setup shows both).
The device is CUDA when present, then Apple MPS, then the CPU; the environment
variable ``MAML_LECTURE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the choice.

Second-order MAML (lecture §1, Appendix A) differentiates through a gradient, and accelerators
have a history of missing or wrong double-backward kernels (Apple MPS above all). So an
accelerator is used only after a small probe computed the MAML meta-gradient there exactly as
the CPU does (``probe_device``). Set ``MAML_LECTURE_PROBE=0`` to skip the probe.
"""
from __future__ import annotations

import copy
import os
import random
import re
import sys
import warnings
from contextlib import contextmanager

import numpy as np
import torch

from lecture_utils.maml import MAML
from lecture_utils.models import Conv4, SineMLP

DEVICE_ENV = "MAML_LECTURE_DEVICE"
PROBE_ENV = "MAML_LECTURE_PROBE"
CHOICES = "cpu, cuda, cuda:N (e.g. cuda:1), mps"

# The probe's float32 tolerance, per parameter: |g_device - g_cpu| <= RTOL·|g_cpu| + ATOL (2-norms).
# The same float32 sums in another order differ by ~1e-7 relative; through the probe's second-order
# graph they differed from a float64 run by at most 3e-6, so 1e-3 leaves a margin of 300. The
# errors we guard against are far larger: dropping the second-order term alone (first-order MAML)
# moves every parameter's meta-gradient by 17% or more. ATOL covers conv biases, whose gradient is
# exactly zero in exact arithmetic (batch norm removes them) and ~1e-6 in float32.
RTOL, ATOL = 1e-3, 1e-5

_probe_results: dict[str, str | None] = {}  # device -> None (passed) or why it failed; per session
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
        first_time = str(device) not in _probe_results
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


# --- the second-order probe ------------------------------------------------------------------

def probe_device(device: str | torch.device) -> str | None:
    """Does second-order MAML compute correctly on ``device``? None if so, else why not.

    Computes the meta-gradient (one inner step, ``create_graph`` through the inner gradient) of
    a small Conv4 with the package's batch norm (5-way 1-shot, 2 tasks, per-task loop) and of
    the sinusoid MLP (2 tasks under ``vmap``), batched as ``MAML.objective`` batches them, on
    ``device`` and on the CPU from the same weights and inputs, and compares them within
    ``RTOL``/``ATOL``. The answer is cached per device for the session.
    """
    device = torch.device(device)
    if str(device) not in _probe_results:
        _probe_results[str(device)] = _run_probe(device)
    return _probe_results[str(device)]


def _run_probe(device: torch.device) -> str | None:
    cases = _probe_cases()
    reference = {name: _meta_gradient(*case, torch.device("cpu")) for name, case in cases.items()}
    try:
        with _full_float32(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "no deterministic implementation": not our question
            candidate = {name: _candidate_meta_gradient(*case, device) for name, case in cases.items()}
    except Exception as err:  # a missing kernel, an unsupported op, out of memory, ...
        message = (str(err).strip().splitlines() or [""])[0][:160]
        return f"second-order MAML fails there ({type(err).__name__}: {message})"
    for model_name, grads in reference.items():
        for param, g_cpu in grads.items():
            error = (candidate[model_name][param] - g_cpu).norm()
            if not error <= RTOL * g_cpu.norm() + ATOL:  # `not <=` also catches NaN
                relative = error / max(g_cpu.norm(), ATOL)
                return (f"its second-order MAML gradient differs from the CPU's ({model_name} {param}: "
                        f"{relative:.1e} relative, tolerance {RTOL:.0e})")
    return None


def _probe_cases() -> dict:
    """(model, batch, MAML) for the Conv4 and the MLP, built without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        conv, mlp = Conv4(5, hidden=8), SineMLP()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 10, 1, 28, 28, generator=g)  # 2 tasks, 5-way, 1 support + 1 query each
    labels = torch.arange(5).repeat(2).repeat(2, 1)
    x = torch.rand(2, 10, 1, generator=g) * 10 - 5  # 2 sinusoid tasks, 5 support + 5 query points
    y = (torch.rand(2, 1, 1, generator=g) * 4 + 1) * torch.sin(x - torch.rand(2, 1, 1, generator=g) * 3)
    return {
        "Conv4": (conv, (images[:, :5], labels[:, :5], images[:, 5:], labels[:, 5:]),
                  MAML(task="classification", inner_lr=0.4)),
        "MLP": (mlp, (x[:, :5], y[:, :5], x[:, 5:], y[:, 5:]), MAML(task="regression", inner_lr=0.01)),
    }


def _meta_gradient(model, batch, maml, device: torch.device) -> dict[str, torch.Tensor]:
    """The second-order meta-gradient computed on ``device``, returned on the CPU."""
    model = copy.deepcopy(model).to(device)
    loss, _ = maml.objective(model, tuple(t.to(device) for t in batch))
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(loss, params)
    return {n: g.detach().cpu() for n, g in zip(names, grads)}


def _candidate_meta_gradient(model, batch, maml, device: torch.device) -> dict[str, torch.Tensor]:
    """The device side of the probe (its own name, so that tests can break it)."""
    return _meta_gradient(model, batch, maml, device)


@contextmanager
def _full_float32():
    """TF32 off while probing: on Ampere and later GPUs cuDNN convolutions default to TF32
    (10-bit mantissa), which moves this small Conv4's meta-gradient by far more than RTOL."""
    try:
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    except RuntimeError:  # TF32 set through torch's newer fp32_precision API: leave it as it is
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch calls these flags legacy
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


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

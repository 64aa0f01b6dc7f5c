"""The second-order probe: is MAML's meta-gradient right on an accelerator before it is used?

Second-order MAML (lecture §1, Appendix A) differentiates through a gradient, and accelerators
have a history of missing or wrong double-backward kernels (Apple MPS above all).
``device.get_device`` calls ``probe_device`` before it hands out a GPU or MPS: a small Conv4 and
the sinusoid MLP compute the meta-gradient there and on the CPU from the same weights and
inputs, and the two must agree within ``RTOL``/``ATOL``.
"""
from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

import torch

from lecture_utils.maml import MAML
from lecture_utils.models import Conv4, SineMLP

# The probe's float32 tolerance, per parameter: |g_device - g_cpu| <= RTOL·|g_cpu| + ATOL (2-norms).
# The same float32 sums in another order differ by ~1e-7 relative; through the probe's second-order
# graph they differed from a float64 run by at most 3e-6, so 1e-3 leaves a margin of 300. The
# errors we guard against are far larger: dropping the second-order term alone (first-order MAML)
# moves every parameter's meta-gradient by 17% or more. ATOL covers conv biases, whose gradient is
# exactly zero in exact arithmetic (batch norm removes them) and ~1e-6 in float32.
RTOL, ATOL = 1e-3, 1e-5

_probe_results: dict[str, str | None] = {}  # device -> None (passed) or why it failed; per session


def already_probed(device: str | torch.device) -> bool:
    """True when ``device`` was probed in this session (its answer is cached)."""
    return str(torch.device(device)) in _probe_results


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

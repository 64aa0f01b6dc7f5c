"""The one call at the top of every notebook: threads, seeds, device, and one line saying where.

    from lecture_utils.notebook_setup import setup
    device = setup(seed=0)        # prints e.g. "computing on: cpu (1 threads)"

Threads: the lecture's tensors are small, so on the CPU one torch thread is as fast as many,
and on a busy laptop far faster (several threads wait for each other whenever one of them is
descheduled: a notebook took 13 s with one thread and over 100 s with two on a loaded 2-core
machine). Set ``MAML_LECTURE_THREADS=N`` to use N threads instead; if ``OMP_NUM_THREADS`` is
set, torch already follows it and ``setup`` leaves the thread count alone.
"""
from __future__ import annotations

import os

import torch

from lecture_utils.device import describe_device, get_device, seed_everything

THREADS_ENV = "MAML_LECTURE_THREADS"
DEVICE_LINE = "computing on:"  # nbval_sanitize.cfg masks the rest of this line (it differs by machine)


def threads_from_environment(environ=None) -> int | None:
    """The torch thread count ``setup`` applies on the CPU, or None to leave torch's own.

    ``$MAML_LECTURE_THREADS`` (a positive integer) wins; with ``$OMP_NUM_THREADS`` set the user
    has chosen already (torch reads it), so None; otherwise 1.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(THREADS_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV}={value!r} is not a positive whole number of threads; "
                             f"set it to e.g. 1 or 4, or unset it")
        return int(value)
    if environ.get("OMP_NUM_THREADS", "").strip():
        return None
    return 1


def setup(seed: int = 0, float64: bool = False) -> torch.device:
    """Limit CPU threads, seed everything, choose the device, print one line; return the device.

    ``float64=True`` is for notebooks that compute in double precision: Apple MPS has no
    float64, so the CPU is used there instead.
    """
    device = get_device()
    if float64 and device.type == "mps":
        device = torch.device("cpu")
    if device.type == "cpu":
        threads = threads_from_environment()
        if threads is not None:
            torch.set_num_threads(threads)
    seed_everything(seed)
    print(DEVICE_LINE, describe_device(device))
    return device

"""Measuring what a meta-gradient costs: time and memory (lecture §2, "the problem: cost").

Second-order MAML keeps the graph of every inner step alive until the outer backward pass,
so its memory grows with the number of inner steps; first-order MAML does not. The memory
that matters is what the autograd graph *saves for backward*. ``graph_saved_bytes`` walks the
graph behind a loss and adds up the distinct tensors its nodes hold, which works the same on a
CPU and a GPU. (Saved-tensor hooks would be the other way, but ``torch.func.grad`` refuses
them.) On CUDA, ``measure`` also reports the allocator's peak.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import Tensor

from lecture_utils.validation import check_callable


def graph_saved_bytes(loss: Tensor) -> int:
    """Bytes of the distinct tensors saved for backward in the graph that produced ``loss``."""
    seen_nodes, seen_storages, total = set(), set(), 0
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen_nodes:
            continue
        seen_nodes.add(node)
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                value = getattr(node, attr)
            except RuntimeError:  # already freed by an earlier backward
                continue
            for tensor in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(tensor, Tensor):
                    storage = tensor.untyped_storage()
                    key = (storage.data_ptr(), storage.nbytes())
                    if key not in seen_storages:
                        seen_storages.add(key)
                        total += storage.nbytes()
        stack.extend(parent for parent, _ in node.next_functions)
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(loss_fn: Callable[[], Tensor], device: torch.device | str = "cpu", repeats: int = 5,
            warmup: int = 1) -> dict[str, float]:
    """Cost of one meta-gradient: ``loss_fn()`` builds the meta-loss, then it is back-propagated.

    Returns the median milliseconds (forward + backward), the MiB the graph saved for backward
    and, on CUDA, the allocator's peak MiB.
    """
    check_callable(loss_fn, "loss_fn", "lambda: MAML(...).objective(model, batch)[0]")
    device = torch.device(device)
    for _ in range(warmup):
        loss_fn().backward()
    loss = loss_fn()
    saved = graph_saved_bytes(loss)
    loss.backward()
    del loss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        loss_fn().backward()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    result = {"ms": statistics.median(times), "saved_mib": saved / 2**20}
    if device.type == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result

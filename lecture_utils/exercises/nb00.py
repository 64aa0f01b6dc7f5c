"""Self-checks for notebook 00, setup (no section of the notes: the way around the notebooks).

1. ``check_same_draw``: a function that seeds and draws twice; called here with a seed the student
   never saw.
2. ``check_to_device``: a function that moves a tensor to a given device; called here with the
   ``meta`` device (it exists on every machine), so the check works on a CPU-only laptop too.
3. ``check_map``: which notebook teaches what (the table of section 5).

Each ``check_*`` prints one line, "Correct: ..." or "Not yet: <hint>", and returns None.
"""
from __future__ import annotations

import torch

from lecture_utils.exercises import call_student, verdict


def check_same_draw(draw_twice) -> None:
    """Exercise 1: ``draw_twice(seed) -> (a, b)``, two draws of ``torch.rand(2)``, each right after
    seeding with ``seed``."""
    if not callable(draw_twice):
        verdict(False, "", "draw_twice should be a function of seed (fill in the TODO).")
        return
    seed = int(torch.randint(1000, 10**6, (1,), generator=torch.Generator().manual_seed(2024)))
    ran, got = call_student(draw_twice, seed, name="draw_twice")
    if not ran:
        return
    if isinstance(got, tuple) and len(got) == 2 and any(t is None for t in got):
        verdict(False, "", "a or b is still None: fill in the TODOs.")
        return
    if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(t, torch.Tensor) for t in got):
        verdict(False, "", "draw_twice should return the two draws: return a, b (both tensors).")
        return
    a, b = got
    want = torch.rand(2, generator=torch.Generator().manual_seed(seed))
    if torch.equal(a.cpu(), want) and torch.equal(b.cpu(), want):
        verdict(True, f"same seed, same numbers: with seed {seed} both draws are the seed's first draw.", "")
    elif torch.equal(a.cpu(), want):
        verdict(False, "", "a is right but b differs: seed again (with the same seed) right before the second draw.")
    else:
        verdict(False, "", "the draws are not the seed's first draw: call seed_everything(seed) "
                           "(or torch.manual_seed(seed)) right before each torch.rand(2), with the seed passed in.")


def check_to_device(to_device) -> None:
    """Exercise 2: ``to_device(tensor, device)`` returns ``tensor`` on ``device``, values unchanged.

    The check calls it with ``torch.device("meta")`` (a device without data that every PyTorch has)
    and with the CPU, so it can tell ``.to(device)`` from returning the input."""
    if not callable(to_device):
        verdict(False, "", f"to_device should be a function of (tensor, device), not {type(to_device).__name__}.")
        return
    x = torch.randn(3, generator=torch.Generator().manual_seed(11))
    ran, on_meta = call_student(to_device, x, torch.device("meta"), name="to_device")
    if not ran:
        return
    if on_meta is None:
        verdict(False, "", "to_device returned None: fill in the TODO.")
        return
    if not isinstance(on_meta, torch.Tensor):
        verdict(False, "", f"to_device returned {type(on_meta).__name__}, not a tensor: return tensor.to(device).")
        return
    if on_meta.device.type != "meta":
        verdict(False, "", f"asked for the 'meta' device, to_device returned a tensor on '{on_meta.device}': "
                           "move the tensor to the device passed in, tensor.to(device).")
        return
    ran, on_cpu = call_student(to_device, x, torch.device("cpu"), name="to_device")
    if not ran:
        return
    if not isinstance(on_cpu, torch.Tensor) or on_cpu.shape != x.shape or not torch.equal(on_cpu.cpu(), x):
        verdict(False, "", "the values changed on the way: .to(device) moves a tensor without changing it.")
        return
    verdict(True, "to_device moves a tensor to the device it is given; the notebooks call it with get_device().", "")


def check_map(maml_steps_nb, first_order_nb, reptile_nb) -> None:
    """Exercise 3: the notebooks that teach MAML's two loops, first-order MAML and Reptile."""
    answer = (maml_steps_nb, first_order_nb, reptile_nb)
    if any(a is None for a in answer):
        verdict(False, "", "look at the table in section 5; answer with strings such as \"02\".")
    elif not all(isinstance(a, str) for a in answer):
        verdict(False, "", "answer with strings such as \"02\" (with the leading zero), not numbers.")
    else:
        verdict(answer == ("01", "03", "05"),
                "01 teaches the algorithm, 03 the first-order approximation, 05 Reptile.",
                "not all three match the table in section 5: which notebook covers the notes' "
                "알고리즘 오버뷰, which 문제점과 대안, which Appendix C?")

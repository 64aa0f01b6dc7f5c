"""Self-checks for notebook 00, setup (no section of the notes: the way around the notebooks).

1. ``check_same_draw``: a function that seeds and draws twice; called here with a seed the student
   never saw, while ``torch.rand`` is watched: each of the two results must be its own draw, taken
   right after seeding (so returning one draw twice does not pass).
2. ``check_to_device``: a function that moves a tensor to a given device; called here with the
   ``meta`` device (it exists on every machine), so the check works on a CPU-only laptop too, and
   with tensors of two dtypes, one of them in an autograd graph: moving changes only the device.
3. ``check_map``: which notebook teaches what (the table of section 5).

Each ``check_*`` prints one line, "Correct: ..." or "Not yet: <hint>", and returns None.
"""
from __future__ import annotations

import torch

from lecture_utils.exercises import call_student, swapped, verdict


def check_same_draw(draw_twice) -> None:
    """Exercise 1: ``draw_twice(seed) -> (a, b)``, two draws of ``torch.rand(2)``, each right after
    seeding with ``seed``."""
    if not callable(draw_twice):
        verdict(False, "", "draw_twice should be a function of seed (fill in the TODO).")
        return
    seed = int(torch.randint(1000, 10**6, (1,), generator=torch.Generator().manual_seed(2024)))
    want = torch.rand(2, generator=torch.Generator().manual_seed(seed))
    fresh = torch.Generator().manual_seed(seed).get_state()  # a generator right after seeding with seed
    draws = []  # (drawn right after seeding?, the tensor drawn) for every torch.rand call
    rand = torch.rand

    def watched_rand(*args, **kwargs):
        generator = kwargs.get("generator") or torch.default_generator
        seeded = generator.device.type == "cpu" and torch.equal(generator.get_state(), fresh)
        out = rand(*args, **kwargs)
        draws.append((seeded, out))
        return out

    with swapped({"torch.rand": watched_rand}, student=draw_twice):
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
    if not (torch.equal(a.cpu(), want) and torch.equal(b.cpu(), want)):
        if torch.equal(a.cpu(), want):
            verdict(False, "", "a is right but b differs: seed again (with the same seed) right before the second draw.")
        else:
            verdict(False, "", "the draws are not the seed's first draw: call seed_everything(seed) "
                               "(or torch.manual_seed(seed)) right before each torch.rand(2), with the seed passed in.")
        return
    source = {id(out): seeded for seeded, out in draws}
    if len(draws) < 2 or a is b:
        ran_once = " (torch.rand ran once)" if len(draws) < 2 else ""
        verdict(False, "", f"draw_twice returns one draw twice{ran_once}: b should come from a second "
                           "torch.rand(2), after seeding again, to see that the seed repeats the numbers.")
    elif id(a) not in source or id(b) not in source:
        verdict(False, "", "return a and b as the two calls of torch.rand(2) gave them (not a copy or a slice).")
    elif not (source[id(a)] and source[id(b)]):
        verdict(False, "", "a draw did not start from a fresh seed: call seed_everything(seed) right before "
                           "each torch.rand(2).")
    else:
        verdict(True, f"same seed, same numbers: with seed {seed} both draws are the seed's first draw.", "")


def check_to_device(to_device) -> None:
    """Exercise 2: ``to_device(tensor, device)`` returns ``tensor`` on ``device``, with its values, dtype,
    shape and autograd graph unchanged.

    The check calls it with ``torch.device("meta")`` (a device without data that every PyTorch has)
    and with the CPU, so it can tell ``.to(device)`` from returning the input; on a float tensor that
    requires grad and on an integer tensor, so a cast, a reshape or a detach shows."""
    if not callable(to_device):
        verdict(False, "", f"to_device should be a function of (tensor, device), not {type(to_device).__name__}.")
        return
    g = torch.Generator().manual_seed(11)
    inputs = [torch.randn(2, 3, generator=g).requires_grad_(), torch.randint(0, 9, (3, 2), generator=g)]
    for x in inputs:
        for device in (torch.device("meta"), torch.device("cpu")):
            ran, moved = call_student(to_device, x, device, name="to_device")
            if not ran:
                return
            if moved is None:
                verdict(False, "", "to_device returned None: fill in the TODO.")
                return
            if not isinstance(moved, torch.Tensor):
                verdict(False, "", f"to_device returned {type(moved).__name__}, not a tensor: return tensor.to(device).")
                return
            if moved.device.type != device.type:
                verdict(False, "", f"asked for the '{device}' device, to_device returned a tensor on '{moved.device}': "
                                   "move the tensor to the device passed in, tensor.to(device).")
                return
            if moved.dtype != x.dtype:
                verdict(False, "", f"a {x.dtype} tensor came back as {moved.dtype}: moving should not change the "
                                   "dtype (the model's weights and the data must keep matching dtypes). "
                                   "Pass only the device: tensor.to(device).")
                return
            if moved.shape != x.shape:
                verdict(False, "", f"a tensor of shape {tuple(x.shape)} came back with shape {tuple(moved.shape)}: "
                                   "moving should not reshape it.")
                return
            if x.requires_grad and not moved.requires_grad:
                verdict(False, "", "the tensor required grad and the moved one does not: to_device cut it out of the "
                                   "autograd graph (detach?). tensor.to(device) keeps the graph, so gradients still "
                                   "reach the original.")
                return
            if device.type == "cpu" and not torch.equal(moved.detach(), x.detach()):
                verdict(False, "", "the values changed on the way: .to(device) moves a tensor without changing it.")
                return
    verdict(True, "to_device moves a tensor to the device it is given, and changes nothing else; "
                  "the notebooks call it with get_device().", "")


def check_map(maml_steps_nb, first_order_nb, reptile_nb) -> None:
    """Exercise 3: the notebooks that teach MAML's two loops, first-order MAML and Reptile."""
    answer = (maml_steps_nb, first_order_nb, reptile_nb)
    if any(a is None for a in answer):
        verdict(False, "", "look at the table in section 5; answer with strings such as \"02\".")
    elif not all(isinstance(a, str) for a in answer):
        verdict(False, "", "answer with strings such as \"02\" (with the leading zero), not numbers.")
    elif not all(len(a) == 2 and a.isdigit() for a in answer):
        verdict(False, "", f"answer with the two digits a notebook's file name starts with, such as \"02\" "
                           f"(got {answer!r}).")
    else:
        verdict(answer == ("01", "03", "05"),
                "01 teaches the algorithm, 03 the first-order approximation, 05 Reptile.",
                "not all three match the table in section 5: which notebook covers the notes' "
                "알고리즘 오버뷰, which 문제점과 대안, which Appendix C?")

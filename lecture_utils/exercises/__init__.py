"""Self-checks for the notebook exercises.

Every exercise ends with a call that prints one plain line, "Correct: ..." or "Not yet: ...",
so a stored notebook output stays the same from run to run. This module holds the generic
helpers; the checks for one notebook live beside it in ``nb00.py`` ... ``nb05.py`` (and
``template.py`` for ``notebooks/_template.ipynb``). The worked solutions are not here: each one
exists once, folded in its notebook, and ``tests/test_exercises.py`` runs it through its check.

Where an exercise asks for a computation, a check verifies the computation, not only the number:
it calls the student's function on inputs the student never saw, requires a ``grad_fn``, or counts
gradient computations with ``count_gradients`` (a hook on each leaf tensor).

    from lecture_utils.exercises import verdict, check_close
    verdict(answer == 3, "three inner steps.", "count the calls to the inner update.")
    check_close(my_loss, 0.25, what="the query loss")
"""
from __future__ import annotations

import math
from numbers import Real

__all__ = ["verdict", "check_close", "check_equal", "call_student", "as_number", "student_number",
           "count_gradients"]


def verdict(ok: bool, success: str, hint: str) -> bool:
    """Print "Correct: <success>" or "Not yet: <hint>" and return ``ok`` as a bool."""
    ok = bool(ok)
    print(f"Correct: {success}" if ok else f"Not yet: {hint}")
    return ok


def call_student(fn, *args, name: str = "your function"):
    """Call a student's function; if it raises, print "Not yet" naming the error and return
    (False, None), so a checker reports a mistake instead of raising. Else (True, result)."""
    try:
        return True, fn(*args)
    except Exception as err:  # a student's code may fail in any way
        message = str(err).splitlines()[0] if str(err) else ""
        verdict(False, "", f"{name} raised {type(err).__name__}: {message}")
        return False, None


def as_number(value, what: str) -> float | None:
    """A finite Python float from a number, a one-element tensor or a one-element tuple or list
    (``torch.autograd.grad`` returns a tuple); otherwise print a "Not yet" hint and return None."""
    if value is None:
        verdict(False, "", f"{what} is still None: fill in the TODO above.")
        return None
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if hasattr(value, "numel"):
        if value.numel() != 1:
            verdict(False, "", f"{what} should be one number, got a tensor of shape {tuple(value.shape)}.")
            return None
        value = value.detach().cpu().item()
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        verdict(False, "", f"{what} should be a finite number, not {value!r}.")
        return None
    return float(value)


def student_number(fn, *args, name: str, none_hint: str) -> float | None:
    """Call a student's function that must return one number: the number as a float, or None after
    printing the "Not yet" line (it raised, returned None, or returned something else)."""
    ran, got = call_student(fn, *args, name=name)
    if not ran:
        return None
    if got is None:
        verdict(False, "", f"{name} returned None: {none_hint}")
        return None
    return as_number(got, f"the value {name} returned")


class count_gradients:
    """Count how often autograd computes a gradient for each of ``tensors`` (leaf tensors that
    require grad), by a tensor hook on each; ``backward()`` and ``torch.autograd.grad`` both count.

        with count_gradients([w]) as counter:
            student_function(w)
        counter.calls   # gradient computations that reached w
    """

    def __init__(self, tensors):
        self.tensors, self.calls, self._handles = list(tensors), 0, []

    def _hook(self, grad):
        self.calls += 1

    def __enter__(self):
        self._handles = [t.register_hook(self._hook) for t in self.tensors]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        return False


def check_close(value, expected, rtol: float = 1e-4, what: str = "the value", atol: float = 1e-8) -> bool:
    """Check that ``value`` (number, list, NumPy array or tensor) is close to ``expected``.

    Shapes must agree; the message names ``what`` and never prints long floats.
    """
    if value is None:
        return verdict(False, "", f"{what} is still None: fill in the TODO above.")
    got, want = _flat_floats(value), _flat_floats(expected)
    if got is None:
        return verdict(False, "", f"{what} should be a number or an array, not {type(value).__name__}.")
    if _shape(value) != _shape(expected):
        return verdict(False, "", f"{what} has shape {_shape(value)}, expected {_shape(expected)}.")
    bad = [i for i, (g, w) in enumerate(zip(got, want))
           if not math.isclose(g, w, rel_tol=rtol, abs_tol=atol)]
    if bad:
        where = "" if len(got) == 1 else f" at {len(bad)} of {len(got)} entries"
        return verdict(False, "", f"{what} is off{where} (got {got[bad[0]]:.4g}).")
    return verdict(True, f"{what} matches.", "")


def check_equal(value, expected, what: str = "the answer") -> bool:
    """Check exact equality (ints, strings, tuples, ...)."""
    if value is None:
        return verdict(False, "", f"{what} is still None: fill in the TODO above.")
    return verdict(value == expected, f"{what} is right.", f"{what} is not right yet (got {value!r}).")


def _shape(x) -> tuple:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return tuple(shape)
    if isinstance(x, (list, tuple)):
        return (len(x),) + (_shape(x[0]) if x else ())
    return ()


def _flat_floats(x) -> list[float] | None:
    """Flatten a number, nested list, NumPy array or torch tensor into Python floats."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().reshape(-1).tolist()
    elif hasattr(x, "tolist"):  # NumPy array or scalar
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        out = []
        for item in x:
            sub = _flat_floats(item)
            if sub is None:
                return None
            out.extend(sub)
        return out
    try:
        return [float(x)]
    except (TypeError, ValueError):
        return None

"""Self-checks for the notebook exercises.

Every exercise ends with a call that prints one plain line, "Correct: ..." or "Not yet: ...",
so a stored notebook output stays the same from run to run. This module holds the generic
helpers; the checks for one notebook live beside it in ``nb00.py`` ... ``nb06.py`` (and
``template.py`` for ``notebooks/_template.ipynb``). The worked solutions are not here: each one
exists once, folded in its notebook, and ``tests/test_exercises.py`` runs it through its check.

Where an exercise asks for a computation, a check verifies the computation, not only the number:
it calls the student's function on inputs it draws itself (other sizes, step sizes, seeds), so a
number typed from the notebook fails; it requires a ``grad_fn``, or counts gradient computations
with ``count_gradients`` (a hook on each leaf tensor); and while the student's function runs, the
package function that would do the exercise for it is made unavailable (``unavailable``).

    from lecture_utils.exercises import verdict, check_close
    verdict(answer == 3, "three inner steps.", "count the calls to the inner update.")
    check_close(my_loss, 0.25, what="the query loss")
"""
from __future__ import annotations

import contextlib
import importlib
import math
import sys
from numbers import Real

__all__ = ["verdict", "check_close", "check_equal", "call_student", "as_number", "student_number",
           "count_gradients", "unavailable", "swapped", "WriteItYourself", "MAML_FUNCTIONS"]

# The package functions that compute a MAML inner step or meta-loss: unavailable while a check of an
# exercise that asks for one of them runs.
MAML_FUNCTIONS = ("lecture_utils.maml.adapt", "lecture_utils.maml.MAML.objective", "lecture_utils.maml.MAML.task_loss",
                  "lecture_utils.batching.task_losses", "lecture_utils.batching.adapt_tasks")


def verdict(ok: bool, success: str, hint: str) -> bool:
    """Print "Correct: <success>" or "Not yet: <hint>" and return ``ok`` as a bool."""
    ok = bool(ok)
    print(f"Correct: {success}" if ok else f"Not yet: {hint}")
    return ok


def call_student(fn, *args, name: str = "your function", **kwargs):
    """Call a student's function; if it raises, print "Not yet" naming the error and return
    (False, None), so a checker reports a mistake instead of raising. Else (True, result)."""
    fn = _STAND_INS.get(id(fn), fn)  # the package function itself, passed as the answer
    try:
        return True, fn(*args, **kwargs)
    except WriteItYourself as err:
        verdict(False, "", f"{name} called {err}")
        return False, None
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


def student_number(fn, *args, name: str, none_hint: str, **kwargs) -> float | None:
    """Call a student's function that must return one number: the number as a float, or None after
    printing the "Not yet" line (it raised, returned None, or returned something else)."""
    ran, got = call_student(fn, *args, name=name, **kwargs)
    if not ran:
        return None
    if got is None:
        verdict(False, "", f"{name} returned None: {none_hint}")
        return None
    return as_number(got, f"the value {name} returned")


class WriteItYourself(Exception):
    """Raised by a package function that an exercise asks the student to write, while its check runs."""


def _resolve(path: str):
    """(owner, name) for a dotted path "package.module.name" or "package.module.Class.name"."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:-1]:
            owner = getattr(owner, part)
        if not hasattr(owner, parts[-1]):
            break
        return owner, parts[-1]
    raise AttributeError(f"{path} does not exist: a check names a package function that was renamed or moved; "
                         "update the path in lecture_utils/exercises.")


def _namespaces(student):
    """The dicts where a student's code can find a package function: every ``lecture_utils`` module,
    the notebook's ``__main__`` and the globals of the student's function."""
    spaces = [vars(module) for name, module in list(sys.modules.items())
              if (name == "__main__" or name.split(".")[0] == "lecture_utils") and hasattr(module, "__dict__")]
    student_globals = getattr(student, "__globals__", None)
    if isinstance(student_globals, dict) and all(student_globals is not d for d in spaces):
        spaces.append(student_globals)
    return spaces


_MISSING = object()  # an attribute a class did not define itself (it inherited it)
_STAND_INS: dict = {}  # id(function) -> what stands in for it while a swapped() block runs


@contextlib.contextmanager
def swapped(replacements: dict, student=None):
    """Put ``replacements[path]`` in place of the function at ``path`` ("lecture_utils.maml.adapt",
    "lecture_utils.maml.MAML.objective") while the block runs: at the path itself, and wherever the
    same function is bound in a ``lecture_utils`` module, the notebook or the student function's
    globals. Everything is restored on exit, even when the block raises.

        with swapped({"lecture_utils.sinusoid.sinusoid": recording}, student=fn):
            fn(x)
    """
    undo = []  # (namespace dict or owner, name, previous value or _MISSING)
    try:
        for path, new in replacements.items():
            owner, name = _resolve(path)
            old = getattr(owner, name)
            undo.append((_STAND_INS, id(old), _STAND_INS.get(id(old), _MISSING)))
            _STAND_INS[id(old)] = new
            if isinstance(owner, type):
                undo.append((owner, name, owner.__dict__.get(name, _MISSING)))
                setattr(owner, name, new)
                continue
            for space in _namespaces(student) + [vars(owner)]:
                for key, value in list(space.items()):
                    if value is old:
                        undo.append((space, key, value))
                        space[key] = new
        yield
    finally:
        for where, name, value in reversed(undo):
            if where is _STAND_INS and value is _MISSING:
                del _STAND_INS[name]
            elif isinstance(where, dict):
                where[name] = value
            elif value is _MISSING:
                delattr(where, name)
            else:
                setattr(where, name, value)


def unavailable(*paths: str, student=None):
    """While the block runs, each function at ``paths`` raises ``WriteItYourself``: the check of an
    exercise that asks the student to write it calls the student's function inside this block, so
    the package's own version cannot stand in for it (``call_student`` turns the error into a
    "Not yet" line naming the function).

        with unavailable("lecture_utils.widgets.shift.distort_episodes", student=distort_task):
            ran, got = call_student(distort_task, episode, 0.6, 0.7, name="distort_task")
    """
    return swapped({path: _write_it_yourself(path) for path in paths}, student)


def _write_it_yourself(path: str):
    parts = path.split(".")
    label = path if parts[0] != "lecture_utils" else (
        ".".join(parts[-2:]) if parts[-2][:1].isupper() else parts[-1])

    def write_it_yourself(*args, **kwargs):
        raise WriteItYourself(f"{label}, which does this exercise for you: write the computation yourself "
                              f"(the check makes {label} unavailable while it runs).")
    return write_it_yourself


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

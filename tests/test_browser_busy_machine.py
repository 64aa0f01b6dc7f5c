"""scripts/browser_test.py on a busy machine, without a browser: the kernel wait restarts a
kernel stuck "starting" once, reads of the contents API are retried after HTTP 5xx, and every
failure names what the test was doing."""
from __future__ import annotations

import ast
import importlib.util
import io
import json
import sys
import urllib.error
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "browser_test.py"


@pytest.fixture(scope="module")
def bt():
    spec = importlib.util.spec_from_file_location("browser_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Clock:
    """A fake clock: sleep() advances it, so a wait of minutes takes no time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("http://127.0.0.1/api/contents/x.ipynb", code, "Internal Server Error"
                                  if code >= 500 else "Not Found", {}, io.BytesIO(b""))


def test_kernel_that_is_idle_needs_no_restart(bt):
    clock, restarts = Clock(), []
    states = iter(["starting", "starting", "idle"])
    assert bt.wait_for_kernel(lambda: next(states), lambda: restarts.append(clock()), 300, 100,
                              clock=clock, sleep=clock.sleep) is False
    assert restarts == []


def test_kernel_stuck_starting_is_restarted_once(bt):
    clock, restarts = Clock(), []

    def status():
        return "idle" if restarts and clock() > restarts[0] + 5 else "starting"

    assert bt.wait_for_kernel(status, lambda: restarts.append(clock()), 300, 100,
                              clock=clock, sleep=clock.sleep) is True
    assert len(restarts) == 1 and 100 <= restarts[0] < 101


def test_kernel_that_never_starts_names_its_state(bt):
    clock, restarts = Clock(), []
    with pytest.raises(bt.BrowserTestError, match=r"still 'starting' after 300 s and a restart at 100 s"):
        bt.wait_for_kernel(lambda: "starting", lambda: restarts.append(clock()), 300, 100,
                           clock=clock, sleep=clock.sleep)
    assert len(restarts) == 1


def test_contents_api_is_retried_after_server_errors(bt):
    answers = [http_error(500), urllib.error.URLError(ConnectionResetError("reset")), {"content": 1}]
    waits = []

    def read():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert bt.retry(read, "reading x.ipynb", sleep=waits.append) == {"content": 1}
    assert waits == [0.5, 1.0]


def test_retry_gives_up_naming_the_cause(bt):
    waits = []

    def read():
        raise http_error(503)

    with pytest.raises(bt.BrowserTestError,
                       match=r"reading x.ipynb: HTTP 503 Internal Server Error, on each of 6 tries over 16 s"):
        bt.retry(read, "reading x.ipynb", sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_client_errors_are_not_retried(bt):
    calls = []

    def read():
        calls.append(1)
        raise http_error(404)

    with pytest.raises(bt.BrowserTestError, match="reading x.ipynb: HTTP 404 Not Found"):
        bt.retry(read, "reading x.ipynb", sleep=lambda s: None)
    assert calls == [1]


def test_cut_off_reply_is_retried(bt):
    answers = [json.JSONDecodeError("Expecting value", "", 0), {"ok": True}]

    def read():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert bt.retry(read, "reading x.ipynb", sleep=lambda s: None) == {"ok": True}


def test_failure_message_names_the_step_and_the_kernel(bt):
    err = TimeoutError("Timeout 30000ms exceeded.\n=== logs ===\nwaiting for locator")
    assert bt.failure_message("running all cells", err, lambda: "busy") == (
        "running all cells: TimeoutError: Timeout 30000ms exceeded. (kernel 'busy')")

    def gone():
        raise RuntimeError("page closed")

    assert bt.failure_message("moving the widgets", ValueError("x"), gone) == "moving the widgets: ValueError: x"


def test_no_function_in_the_script_looks_like_a_test():
    """It is a script, not a test module: pytest must never collect anything from it."""
    tree = ast.parse(SCRIPT.read_text())
    names = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not [n for n in names if n.startswith(("test_", "Test"))]

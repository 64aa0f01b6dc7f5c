"""scripts/browser_test.py on a busy machine, without a browser: the kernel wait restarts a
kernel stuck "starting" once; the saved copy is read from disk once it is whole, never through
JupyterLab's contents API during a save (a read mid-save made jupyter_server move the notebook
away: "File Save Error ... No such file or directory"); every failure names what the test was doing."""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "browser_test.py"


@pytest.fixture(scope="module")
def bt():
    return load_script("browser_test")


class Clock:
    """A fake clock: sleep() advances it, so a wait of minutes takes no time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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


def test_run_all_that_takes_long_is_waited_for(bt):
    clock = Clock()
    done = lambda: clock() > 200  # noqa: E731  (busy for 200 s: a long run, not a stuck one)
    bt.wait_for_run(lambda: ["[1]:", "[2]:"] if done() else ["[1]:", "[*]:"],
                    lambda: "idle" if done() else "busy", 600, 60, clock=clock, sleep=clock.sleep)
    assert 201 <= clock() < 203


def test_kernel_that_holds_queued_cells_back_is_reported_as_incomplete(bt):
    """Under load a message can go to a kernel connection being replaced and be lost; JupyterLab
    then shows the kernel "unknown" or "starting" and holds the queued cells. After the stall
    timeout the run is reported incomplete (the caller starts over with a fresh kernel)."""
    clock = Clock()
    with pytest.raises(bt.RunIncomplete, match=r"the kernel stayed 'unknown' for 60 s with code cells queued"):
        bt.wait_for_run(lambda: ["[1]:", "[*]:"], lambda: "unknown", 600, 60, clock=clock, sleep=clock.sleep)
    assert 60 <= clock() < 61


def test_run_all_that_never_ends_says_what_is_queued(bt):
    clock = Clock()
    with pytest.raises(bt.BrowserTestError, match=r"still running after 600 s \(code cells running or queued: "
                                                   r"\[1\], kernel 'busy'\)"):
        bt.wait_for_run(lambda: ["[1]:", "[*]:"], lambda: "busy", 600, 60, clock=clock, sleep=clock.sleep)


def code_cell(count, outputs=()):
    return {"cell_type": "code", "source": "x = 1", "execution_count": count, "outputs": list(outputs)}


def test_unrun_cells_without_an_error_mean_the_session_went_wrong(bt):
    """Seen once: a Run All given while JupyterLab was still setting up the kernel session ran the
    first cell, then asked to select a kernel; the rest stayed unrun, nothing raised."""
    assert bt.not_run({"cells": [code_cell(1), code_cell(None), {"cell_type": "markdown", "source": "#"},
                                 code_cell(None), {**code_cell(None), "source": ""}]}) == [1, 2]
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}
    assert bt.not_run({"cells": [code_cell(1, [error]), code_cell(None)]}) == []  # the notebook failed
    assert bt.not_run({"cells": [code_cell(1), code_cell(2)]}) == []
    assert bt.not_run(None) == []


def test_shut_down_kernels_deletes_only_that_notebooks_sessions(bt):
    import http.server
    import threading

    seen = []

    class Sessions(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps([{"id": "a", "path": "01.ipynb"}, {"id": "b", "path": "02.ipynb"}]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self):
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Sessions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert bt.shut_down_kernels(f"http://127.0.0.1:{server.server_port}", "01.ipynb") == 1
    finally:
        server.shutdown()
    assert seen == ["/api/sessions/a"]


def write_notebook(path, cells: int) -> None:
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": str(i)} for i in range(cells)]}))


class Saver:
    """A save in progress: each clock tick writes the next part of the new notebook to disk, the way
    jupyter_server truncates the file and rewrites it; JupyterLab shows the tab dirty until the end."""

    def __init__(self, path, clock, parts: int = 3):
        self.path, self.clock, self.ticks = path, clock, 0
        self.new = json.dumps({"cells": [{"cell_type": "code", "source": "saved"}] * 50})
        self.parts = [self.new[: len(self.new) * (i + 1) // parts] for i in range(parts)]

    def sleep(self, seconds):
        self.clock.sleep(seconds)
        if self.ticks < len(self.parts):
            self.path.write_text(self.parts[self.ticks])
            os.utime(self.path, ns=(0, 10**9 * (self.ticks + 10)))  # a new mtime on every write
        self.ticks += 1

    def dirty(self):
        return self.ticks <= len(self.parts)


def test_saved_notebook_is_read_only_when_whole(bt, tmp_path):
    path = tmp_path / "01.ipynb"
    write_notebook(path, 2)
    clock = Clock()
    saver = Saver(path, clock)
    seen = []
    dirty = lambda: seen.append(saver.ticks) or saver.dirty()  # noqa: E731
    saved = bt.wait_for_save(path, path.stat().st_mtime_ns, dirty, lambda: "", 30, clock=clock, sleep=saver.sleep)
    assert saved == json.loads(saver.new)
    # half-written files were there (ticks 1, 2) and were never returned
    assert seen and max(seen) == len(saver.parts) + 1


def test_saved_notebook_read_does_not_trust_a_clean_tab_alone(bt, tmp_path):
    """JupyterLab may not mark the tab at all (None): the file on disk must still be whole."""
    path = tmp_path / "01.ipynb"
    write_notebook(path, 2)
    clock = Clock()
    saver = Saver(path, clock, parts=4)
    saved = bt.wait_for_save(path, path.stat().st_mtime_ns, lambda: None, lambda: "", 30, clock=clock,
                             sleep=saver.sleep)
    assert saved == json.loads(saver.new)


def test_a_notebook_that_never_saves_gives_none(bt, tmp_path):
    path = tmp_path / "01.ipynb"
    write_notebook(path, 2)
    clock = Clock()
    assert bt.wait_for_save(path, path.stat().st_mtime_ns, lambda: True, lambda: "", 10, clock=clock,
                            sleep=clock.sleep) is None
    assert clock() >= 10


def test_a_save_error_dialog_is_reported(bt, tmp_path):
    path = tmp_path / "01.ipynb"
    write_notebook(path, 2)
    dialog = "File Save Error for 01.ipynb\nNo such file or directory: 01.ipynb\nOk"
    with pytest.raises(bt.BrowserTestError, match="could not save the copy: File Save Error for 01.ipynb No such"):
        bt.wait_for_save(path, path.stat().st_mtime_ns, lambda: True, lambda: dialog, 10, clock=Clock(),
                         sleep=lambda s: None)


def test_no_notebook_is_read_through_the_contents_api():
    """The cause of "File Save Error ... No such file or directory": a contents-API read of a
    notebook during its save makes jupyter_server move the notebook aside. The script reads the
    saved copy from disk instead."""
    source = SCRIPT.read_text()
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert "/api/contents" not in code


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


class FakeServer:
    def __init__(self, log):
        self.stopped = False
        self.log = log
        log.append("start")

    def stop(self):
        self.stopped = True
        self.log.append("stop")


def test_voila_gets_a_fresh_server_when_its_page_never_comes(bt):
    log, limits = [], []

    def render(server, limit):
        limits.append(limit)
        return bt.NotebookResult("voila: 01.ipynb", stalled=len(limits) == 1,
                                 errors=["rendering the notebook in Voila: TimeoutError"] if len(limits) == 1 else [])

    result, servers = bt.present_in_voila(lambda: FakeServer(log), render, 120, 600)
    assert result.ok and result.name == "voila: 01.ipynb (server 2)"
    assert limits == [120, 120] and log == ["start", "stop", "start"] and servers[0].stopped


def test_voila_is_not_rendered_again_when_the_page_came(bt):
    log = []
    failed = bt.NotebookResult("voila: 01.ipynb", errors=["moving its first slider: no change"])
    result, servers = bt.present_in_voila(lambda: FakeServer(log), lambda server, limit: failed, 120, 600)
    assert result is failed and not result.ok and log == ["start"] and len(servers) == 1


def test_voila_stalling_on_every_server_fails_after_the_last_gets_the_full_timeout(bt):
    log, limits = [], []

    def render(server, limit):
        limits.append(limit)
        return bt.NotebookResult("voila: 01.ipynb", stalled=True, errors=["rendering the notebook in Voila: TimeoutError"])

    result, servers = bt.present_in_voila(lambda: FakeServer(log), render, 120, 600)
    assert not result.ok and len(servers) == bt.VOILA_TRIES == 3
    assert limits == [120, 120, 600] and log == ["start", "stop", "start", "stop", "start"]

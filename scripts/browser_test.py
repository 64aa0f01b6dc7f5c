#!/usr/bin/env python3
"""Real-browser test of the notebooks: JupyterLab and Voilà driven in headless Chromium.

    .venv/bin/python scripts/browser_test.py                       # every notebook, ko/00_setup, then Voilà
    .venv/bin/python scripts/browser_test.py 00_setup 05_reptile   # some notebooks (name or path)
    .venv/bin/python scripts/browser_test.py ko/00_setup           # a notebook of the Korean edition
    .venv/bin/python scripts/browser_test.py --no-voila --keep

For each notebook it does what a student does: opens it in JupyterLab, clears the outputs, runs all
cells on the notebook's fresh kernel (Run > Run All Cells; see ``wait_for_run`` for why not Restart
Kernel and Run All), and checks that every code cell ran (execution counts 1, 2, 3, ...) and that
no cell shows an error. Then it finds every interactive widget (each top-level widget view that has
controls, in any cell: no list to keep up to date), moves one of its controls (a slider by the
arrow keys; else a dropdown, toggle button, checkbox, text box or button) and checks that a figure
(the hash of the image ``src``) or a readout changed, with no traceback. One screenshot per
notebook goes to ``build/screenshots/``.

After the English notebooks it runs one notebook of the Korean edition the same way,
``ko/00_setup.ipynb`` (``KOREAN_NOTEBOOK``), and checks that its Hangul renders: a Korean font is
installed (``fc-list :lang=ko``; ``make test-browser`` installs Debian's fonts-nanum as root), the
rendered markdown contains Hangul, and two different syllables drawn in the page's font come out as
two different glyphs, not the same empty box. Its screenshot, ``ko-00_setup.png``, shows its first
cell, the Korean title and aims. Then one notebook is presented as slides (RISE, ``make
slides``): its toolbar button opens the reveal.js preview, the space bar steps through three
slides, each must differ from the one before, and nothing may be requested from outside the
machine. Finally one notebook with a slider is opened in Voilà (presentation mode, ``make
present``) and its slider is moved.

Nothing in the repository is executed or saved: the notebooks are copied to a temporary
folder (the package finds ``checkpoints/`` relative to its own source, so a copy of
``notebooks/`` is enough), JupyterLab runs with its own settings there (autosave off, no news
popup), and the repository's notebooks are checked unchanged at the end.

On a busy machine (other processes on the cores) JupyterLab is slow, not broken: a kernel still
not idle after a while is restarted once, and every failure message says what the test was doing.
The saved copy is read back from disk, never through JupyterLab's contents API while it saves: a
read that lands mid-save makes jupyter_server move the notebook away (see ``wait_for_save``).

Chromium is the system one (``/usr/bin/chromium`` or ``$CHROMIUM``); Playwright never downloads a
browser. ``make test-browser`` installs both first. Kernels compute on the CPU
(``MAML_LECTURE_DEVICE=cpu``) unless ``--device`` says otherwise. Exit code: 0 all passed,
1 a notebook or widget failed (the summary names it), 2 the test could not start.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
# The Korean edition's notebook that the test runs after the English ones (relative to NOTEBOOK_DIR).
KOREAN_NOTEBOOK = "ko/00_setup.ipynb"
KOREAN_FONT_PACKAGE = "fonts-nanum"  # Debian's; `make chromium` installs it beside Chromium
HANGUL = re.compile(r"[\uac00-\ud7a3]")
SCREENSHOTS = REPO / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless Chromium as root in a container, offline (see shared/lecture/FIELD-NOTES.md).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
# JupyterLab user settings for the test server only: never save on its own, no news popup,
# no extension manager (offline), every cell in the DOM (no virtual scrolling).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
TRACEBACK = "Traceback (most recent call last)"
IDLE_GRACE = 5.0  # seconds after moving a control before an idle kernel means "no change coming"
# Controls tried, in order, on each interactive widget until one changes an output.
CONTROLS = [  # one element each: Playwright matches a scoped selector inside the widget only
    ("slider", ".noUi-handle"),
    ("dropdown", "select"),
    ("toggle button", "button.widget-toggle-button"),
    ("radio button", "input[type=radio]"),
    ("checkbox", "input[type=checkbox]"),
    ("text box", "input[type=text], input[type=number], textarea"),
    ("button", "button.widget-button"),
]
ANY_CONTROL = ", ".join(sel for _, sel in CONTROLS)

# Top-level widget views (a widget nested in another, e.g. the Output of an `interact`, belongs
# to its parent); each is tagged data-bt-widget=i so Playwright can find it again.
TAG_WIDGETS_JS = """([root, controls]) => {
  const scope = document.querySelector(root);
  const cells = [...scope.querySelectorAll('.jp-Cell')];
  const tops = [...scope.querySelectorAll('.jupyter-widgets')]
      .filter(e => !e.parentElement.closest('.jupyter-widgets'));
  return tops.map((e, i) => {
    e.setAttribute('data-bt-widget', String(i));
    const cell = e.closest('.jp-Cell');
    const code = cell ? [...scope.querySelectorAll('.jp-CodeCell')].indexOf(cell) : -1;
    const labels = [...e.querySelectorAll('label.widget-label, .widget-label')]
        .map(l => l.textContent.trim()).filter(t => t);
    return {index: i, cell: cells.indexOf(cell), code_cell: code, controls: e.querySelectorAll(controls).length,
            labels: labels.slice(0, 4)};
  });
}"""

# What a student sees change: every image src (matplotlib PNGs) and the text of every output,
# per cell (or per top-level output in Voilà), without the sliders' own readouts.
SNAPSHOT_JS = """(root) => {
  const scope = document.querySelector(root);
  if (!scope) return {};
  let parts = [...scope.querySelectorAll('.jp-Cell')];
  if (!parts.length) parts = [...scope.querySelectorAll('.jp-OutputArea-child')]
      .filter(e => !e.parentElement.closest('.jp-OutputArea-child'));
  const out = {};
  parts.forEach((part, i) => {
    const area = part.matches('.jp-Cell') ? part.querySelector('.jp-Cell-outputArea') : part;
    if (!area) return;
    const clone = area.cloneNode(true);
    clone.querySelectorAll('.widget-readout').forEach(e => e.remove());
    const images = [...area.querySelectorAll('img')].map(e => e.getAttribute('src') || '');
    out[i] = {text: clone.textContent, images: images};
  });
  return out;
}"""


# The text of each code cell's outputs, in order.
OUTPUT_TEXTS_JS = """(root) => [...document.querySelectorAll(root + ' .jp-CodeCell')].map(
    cell => [...cell.querySelectorAll('.jp-Cell-outputArea')].map(e => e.innerText).join('\\n'))"""
# What JupyterLab and ipywidgets show instead of an output they could not render.
# The description label of a control ("amplitude A"), if it has one.
CONTROL_LABEL_JS = """(e) => {
  const box = e.closest('.widget-inline-hbox, .widget-toggle-buttons, .widget-radio');
  const label = box && box.querySelector('label.widget-label, .widget-label');
  return label ? label.textContent.trim() : (e.textContent || '').trim().slice(0, 30);
}"""
# A slider's value as its readout shows it (aria-valuenow is rounded to one decimal).
SLIDER_VALUE_JS = """(e) => {
  const box = e.closest('.widget-slider, .widget-inline-hbox');
  const readout = box && box.querySelector('.widget-readout');
  return readout ? readout.textContent.trim() : e.getAttribute('aria-valuenow');
}"""
# Does Hangul render as glyphs? Draw two different syllables in the font of the first rendered
# markdown element that holds Hangul: without a Korean font both come out as the same .notdef box.
HANGUL_GLYPHS_JS = """(root) => {
  const scope = document.querySelector(root);
  const hangul = /[\\uac00-\\ud7a3]/;
  const e = scope && [...scope.querySelectorAll('.jp-RenderedMarkdown h1, .jp-RenderedMarkdown h2, .jp-RenderedMarkdown p')]
      .find(x => hangul.test(x.textContent));
  if (!e) return null;
  const style = getComputedStyle(e);
  const font = `${style.fontStyle} ${style.fontWeight} 40px ${style.fontFamily}`;
  const draw = (text) => {
    const canvas = document.createElement('canvas');
    canvas.width = 64; canvas.height = 64;
    const g = canvas.getContext('2d');
    g.font = font; g.fillStyle = '#000'; g.textBaseline = 'top';
    g.fillText(text, 8, 8);
    return Array.from(g.getImageData(0, 0, 64, 64).data).join(',');
  };
  const blank = draw(''), a = draw('\\uac00'), b = draw('\\ud7a3');  // 가, 힣
  return {font: style.fontFamily, inked: a !== blank && b !== blank, distinct: a !== b};
}"""
RENDER_ERRORS = ("Error displaying widget", "Error rendering output item", "Failed to display widget",
                 "Could not render content for")


class BrowserTestError(Exception):
    """A failure with a message that names the notebook and the widget."""


class RunIncomplete(BrowserTestError):
    """Run All did not run every cell, and no cell raised: the kernel session went wrong, not the
    notebook. The test starts the notebook over once, with a fresh kernel."""


@dataclass
class WidgetResult:
    index: int
    cell: int
    labels: list[str]
    control: str = ""
    changed: str = ""
    seconds: float = 0.0
    error: str = ""

    def describe(self) -> str:
        name = f"widget {self.index} (code cell {self.cell}" + (f", '{self.labels[0]}'" if self.labels else "") + ")"
        if self.error:
            return f"{name}: {self.error}"
        return f"{name}: {self.control} -> {self.changed} changed"


@dataclass
class NotebookResult:
    name: str
    open_s: float = 0.0
    run_s: float = 0.0
    widgets_s: float = 0.0
    total_s: float = 0.0
    cells: int = 0
    widgets: list[WidgetResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    screenshot: str = ""
    failed_cell: int | None = None  # the first code cell with an error, for the screenshot
    stalled: bool = False  # Voilà: the page never came (Voilà stopped executing the notebook)

    @property
    def ok(self) -> bool:
        return not self.errors and all(not w.error for w in self.widgets)


# --- servers ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrowserTestError(f"server exited with code {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise BrowserTestError(f"server not up at {url} after {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- a busy machine ----------------------------------------------------------------------------

def wait_for_kernel(status: Callable[[], str], restart: Callable[[], None], timeout: float,
                    restart_after: float, clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> bool:
    """Until ``status()`` reads "idle"; True if it took a restart.

    Under load a kernel can stay "starting" for good; one still not idle after ``restart_after``
    seconds is restarted once (``restart()``). After ``timeout`` seconds in all, the error says
    which state the kernel was stuck in.
    """
    start, restarted = clock(), False
    while True:
        now = status()
        if now == "idle":
            return restarted
        waited = clock() - start
        if waited >= timeout:
            raise BrowserTestError(
                f"the kernel is still {now or 'unknown'!r} after {waited:.0f} s"
                + (f" and a restart at {restart_after:.0f} s" if restarted else "")
                + " (the machine may be overloaded: see the JupyterLab log below; --kernel-timeout waits longer)")
        if not restarted and waited >= restart_after:
            restart()
            restarted = True
        sleep(0.25)


class Server:
    """A JupyterLab or Voilà server in its own process group, stopped by its own PID."""

    def __init__(self, name: str, args: list[str], env: dict, cwd: Path, log: Path, ready_path: str):
        self.name, self.log, self.port = name, log, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [a.replace("{port}", str(self.port)) for a in args]
        self.handle = open(log, "w")
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.handle, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for_http(self.base + ready_path, self.proc, log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server shuts its kernels down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.handle.close()


def prepare_sandbox(root: Path, device: str, folder: Path = NOTEBOOK_DIR) -> tuple[Path, dict]:
    """Copy notebooks/ to root/notebooks; a private Jupyter config with LAB_SETTINGS; the env."""
    notebooks = root / "notebooks"
    shutil.copytree(folder, notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    config = root / "jupyter-config"
    for plugin, values in LAB_SETTINGS.items():
        path = config / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=1))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "IPYTHONDIR": str(root / "ipython"), "MAML_LECTURE_DEVICE": device,
           "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "PYTHONUNBUFFERED": "1"}
    return notebooks, env


def lab_args(notebooks: Path) -> list[str]:
    # No token and no XSRF check: the server listens on 127.0.0.1 only, for this test, and the test
    # shuts a notebook's kernel down through the sessions API (shut_down_kernels).
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port={port}",
            "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={notebooks}"]
    return args + (["--allow-root"] if os.geteuid() == 0 else [])


def voila_args(notebooks: Path) -> list[str]:
    return [sys.executable, "-m", "voila", str(notebooks), "--no-browser", "--port={port}",
            "--Voila.ip=127.0.0.1", "--show_tracebacks=True"]


# --- JupyterLab actions -------------------------------------------------------------------------

def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=top).first.click()
    page.locator(".lm-Menu-item:visible", has_text=item).first.click()


def prompts(page) -> list[str]:
    return [t.strip() for t in page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt").all_text_contents()]


def kernel_status(page) -> str:
    return page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator").first.get_attribute("data-status") or ""


def restart_kernel(page) -> None:
    """Kernel > Restart Kernel..., confirmed."""
    menu(page, "Kernel", "Restart Kernel")  # the first item of that name: the plain restart
    page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=30_000)


def run_all(page, args, tries: int = 3, start_timeout: float = 30) -> None:
    """Edit > Clear Outputs of All Cells, then Run > Run All Cells, until a cell is queued or done.

    After clearing, every prompt reads "[ ]:", so stale outputs cannot satisfy the wait. A Run All
    given while JupyterLab is still setting up the notebook's kernel session can pass over every
    cell without queueing one (seen once in seven runs on a busy machine: the selection moved to
    the last cell, every prompt stayed "[ ]:", the kernel idle). Nothing has run then, so Run All
    is simply given again, up to ``tries`` times, ``start_timeout`` s apart.
    """
    started = (f"() => [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')]"
               ".some(e => /^\\[(\\*|\\d+)\\]:$/.test(e.textContent.trim()))")
    for attempt in range(1, tries + 1):
        menu(page, "Edit", "Clear Outputs of All Cells")
        menu(page, "Run", "Run All Cells")
        try:
            page.wait_for_function(started, timeout=start_timeout * 1000)
            return
        except Exception as err:  # Playwright's TimeoutError
            if "Timeout" not in str(err):
                raise
            print(f"  Run All queued no cell in {start_timeout:.0f} s (kernel {kernel_status(page)!r}); "
                  f"{'again' if attempt < tries else 'giving up'}", flush=True)
    raise BrowserTestError(f"Run All Cells queued no cell, {tries} times {start_timeout:.0f} s apart "
                           f"(kernel {kernel_status(page)!r})")


def shut_down_kernels(base: str, name: str) -> int:
    """Shut down the kernel of every session of notebook ``name`` (the sessions API; the notebook
    itself is not touched). Returns how many."""
    with urllib.request.urlopen(f"{base}/api/sessions", timeout=30) as response:
        sessions = [s for s in json.load(response) if s.get("path") == name]
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()
    return len(sessions)


# States in which JupyterLab holds the queued cells back until the kernel answers.
WAITING_STATES = ("starting", "restarting", "unknown", "")


def wait_for_run(prompts: Callable[[], list[str]], status: Callable[[], str], timeout: float, stall: float,
                 stable: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Until no code cell is queued or running and the kernel is idle, twice ``stable`` s apart.

    Why the test runs all cells on the fresh kernel instead of Kernel > Restart Kernel and Run All:
    a restart makes JupyterLab replace its kernel connection, and on a busy machine a message sent
    in that moment goes to the connection being replaced and is lost (the server logs "Replacing
    stale connection" and a ``struct.error`` for it). When the lost message was the kernel info
    request, JupyterLab shows the kernel "unknown" or "starting" for good and never sends the
    queued cells; Kernel > Reconnect to Kernel did not bring it back. A kernel that still holds
    queued cells back after ``stall`` s raises RunIncomplete (the caller starts over with a fresh
    kernel); after ``timeout`` s the error names the kernel's state and the cells still queued.
    """
    start = clock()
    seen_idle = waiting_since = None
    while clock() - start < timeout:
        now, cells = status(), prompts()
        queued = "[*]:" in cells
        if not queued and now == "idle":
            if seen_idle is not None and clock() - seen_idle >= stable:
                return
            seen_idle = seen_idle if seen_idle is not None else clock()
        else:
            seen_idle = None
        if queued and now in WAITING_STATES:
            waiting_since = waiting_since if waiting_since is not None else clock()
            if clock() - waiting_since >= stall:
                raise RunIncomplete(f"the kernel stayed {now or 'unknown'!r} for {stall:.0f} s with code cells "
                                    "queued (its messages are lost: see the JupyterLab log below)")
        else:
            waiting_since = None
        sleep(0.25)
    running = [i for i, p in enumerate(prompts()) if p == "[*]:"]
    raise BrowserTestError(f"still running after {timeout:.0f} s (code cells running or queued: {running[:5]}, "
                           f"kernel {status()!r})")


# Why the saved notebook is read from disk, never through JupyterLab's contents API while it saves:
# jupyter_server saves a notebook "atomically" by copying it to ".~NAME", then truncating and
# rewriting NAME in place. A GET /api/contents/NAME?content=1 that lands mid-write finds half a
# notebook, takes it for a corrupt file, and "recovers": it moves NAME to NAME.invalid and renames
# ".~NAME" back to NAME, while the saver removes ".~NAME" at the same moment. The notebook is gone:
# the save answers HTTP 404 "No such file or directory: NAME" (JupyterLab's "File Save Error") and
# every later read answers 404. Polling that API while saving did exactly this (the larger the
# notebook and the busier the machine, the wider the window; a loop of PUTs and GETs reproduced it
# within a second). Reading the file itself changes nothing on disk, so it cannot race the save.
DIALOG_TEXT_JS = """() => [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText).join('\\n')"""
# The notebook's tab in the main area is marked dirty until the server has confirmed the save.
DIRTY_JS = """() => { const tab = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current');
  return tab ? tab.classList.contains('jp-mod-dirty') : null; }"""


def read_notebook_file(path: Path) -> dict | None:
    """The notebook on disk as JSON, or None while it is missing or half written."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def wait_for_save(path: Path, before_ns: int, dirty: Callable[[], bool | None], dialog: Callable[[], str],
                  timeout: float, clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> dict | None:
    """The saved notebook once the file on disk is new and whole and JupyterLab no longer marks it
    dirty (``dirty()``: None when the tab is not found); None after ``timeout`` s. A save error
    dialog (``dialog()``: the text of any open dialog) raises, with its text."""
    deadline = clock() + timeout
    while clock() < deadline:
        shown = dialog()
        if "Save" in shown and "Error" in shown:
            raise BrowserTestError(f"JupyterLab could not save the copy: {' '.join(shown.split())[:300]}")
        try:
            changed = path.stat().st_mtime_ns != before_ns
        except OSError:
            changed = False
        if changed and dirty() is not True:
            saved = read_notebook_file(path)
            if saved is not None:
                return saved
        sleep(0.3)
    return None


def save_and_read(page, path: Path, timeout: float = 60) -> dict | None:
    """Save the (temporary copy of the) notebook and read it back from disk; None if it did not save."""
    for attempt in ("keys", "menu"):
        before = path.stat().st_mtime_ns  # now: any earlier save must not count
        if attempt == "keys":
            page.locator(f"{PANEL} .jp-Notebook").first.click(position={"x": 5, "y": 5})
            page.keyboard.press("Control+s")
        else:
            menu(page, "File", "Save Notebook")
        saved = wait_for_save(path, before, lambda: page.evaluate(DIRTY_JS), lambda: page.evaluate(DIALOG_TEXT_JS),
                              timeout / 2)
        if saved is not None:
            return saved
    return None


def check_cells(saved: dict | None, page) -> tuple[int, list[str]]:
    """(code cells, problems): every non-empty code cell ran in order and none stored an error."""
    problems = []
    if saved is None:
        problems.append("could not save the notebook copy to read its outputs (checked the page only)")
        cells = [p for p in prompts(page) if p]
        if any(p in ("[ ]:", "[*]:") for p in cells):
            problems.append(f"not every code cell ran: prompts {cells}")
    else:
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        cells = [c for c in code if "".join(c["source"]).strip()]
        counts = [c["execution_count"] for c in cells]
        for i, cell in enumerate(code):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    problems.append(f"code cell {i} raised {out.get('ename')}: {out.get('evalue', '')[:200]}")
        if counts != list(range(1, len(cells) + 1)) and not problems:
            missing = [i for i, c in enumerate(code) if "".join(c["source"]).strip() and c["execution_count"] is None]
            problems.append(f"execution counts {counts}: code cells {missing[:8]} did not run")
    outputs = page.evaluate(OUTPUT_TEXTS_JS, PANEL)
    for i, text in enumerate(outputs):
        if TRACEBACK in text and not any("raised" in p for p in problems):
            problems.append(f"code cell {i} shows a traceback: {text.strip().splitlines()[-1][:200]}")
        for broken in RENDER_ERRORS:
            if broken in text:
                problems.append(f"code cell {i}: {broken!r} (a widget or output did not render)")
    return len(cells), problems


def not_run(saved: dict | None) -> list[int]:
    """Code cells (indices among the code cells) that Run All left unrun although no cell raised:
    then the kernel session went wrong, not the notebook. Empty when a cell raised (Run All stops
    there, and that is the notebook's failure) or when the notebook could not be saved."""
    if saved is None:
        return []
    code = [c for c in saved["cells"] if c["cell_type"] == "code"]
    if any(out.get("output_type") == "error" for c in code for out in c.get("outputs", [])):
        return []
    return [i for i, c in enumerate(code) if "".join(c["source"]).strip() and c.get("execution_count") is None]


def snapshot(page, root: str) -> dict:
    return page.evaluate(SNAPSHOT_JS, root)


def digest(part: dict) -> str:
    return hashlib.sha256((part["text"] + "\0" + "\0".join(part["images"])).encode()).hexdigest()


def difference(before: dict, after: dict) -> str:
    """'' when nothing changed; else what did: 'figure' (an image src) or 'readout' (text)."""
    kinds = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is None or b is None or digest(a) == digest(b):
            continue
        kinds.append("figure" if a["images"] != b["images"] and b["images"] else "readout")
    return "figure" if "figure" in kinds else ("readout" if kinds else "")


def new_traceback(before: dict, after: dict) -> str:
    for key, part in after.items():
        if TRACEBACK in part["text"] and TRACEBACK not in before.get(key, {"text": ""})["text"]:
            lines = [ln for ln in part["text"].splitlines() if ln.strip()]
            return next((ln.strip() for ln in reversed(lines) if "Error" in ln or "Exception" in ln), lines[-1])
    return ""


def operate(page, control, kind: str) -> str:
    """Move or click one control the way a person would; returns what was done."""
    control.scroll_into_view_if_needed(timeout=10_000)
    label = control.evaluate(CONTROL_LABEL_JS)
    kind = f"{kind} '{label}'" if label else kind
    if kind.startswith("slider"):
        before = control.evaluate(SLIDER_VALUE_JS)
        control.focus()
        page.keyboard.press("ArrowRight")
        time.sleep(0.3)
        if control.evaluate(SLIDER_VALUE_JS) == before:  # already at its maximum
            page.keyboard.press("ArrowLeft")
            time.sleep(0.3)
        return f"{kind} {before} -> {control.evaluate(SLIDER_VALUE_JS)}"
    if kind.startswith("dropdown"):
        options = control.locator("option")
        current = control.evaluate("e => e.selectedIndex")
        target = (current + 1) % max(options.count(), 1)
        control.select_option(index=target)
        return f"{kind} option {current} -> {target}"
    if kind.startswith("text box"):
        value = control.input_value()
        for number in (int, float):
            try:
                new = str(number(value) + 1)
                break
            except ValueError:
                continue
        else:
            new = value + "a"
        control.fill(new)
        control.press("Enter")
        return f"text {value!r} -> {new!r}"
    control.click()
    return kind


def exercise_widget(page, root: str, widget: dict, timeout: float) -> WidgetResult:
    """Try the widget's controls in CONTROLS order until one changes an output."""
    result = WidgetResult(widget["index"], widget["code_cell"], widget["labels"])
    start = time.monotonic()
    box = page.locator(f"[data-bt-widget='{widget['index']}']").first
    tried = []
    for kind, selector in CONTROLS:
        candidates = box.locator(selector)
        if kind in ("toggle button", "radio button"):
            candidates = box.locator(f"{selector}:not(.mod-active):not(:checked)")
        candidates = candidates.filter(visible=True)
        if candidates.count() == 0:
            continue
        control = candidates.first
        if control.is_disabled():
            continue
        before = snapshot(page, root)
        done = operate(page, control, kind)
        tried.append(done)
        changed = ""
        moved = time.monotonic()
        while time.monotonic() < moved + timeout:
            time.sleep(0.3)
            changed = difference(before, snapshot(page, root))
            # In JupyterLab, a kernel idle again well after the move has answered already.
            if changed or (time.monotonic() > moved + IDLE_GRACE and lab_kernel_idle(page)):
                break
        if not changed:
            continue
        settle(page, root)
        after = snapshot(page, root)
        result.control, result.changed = done, difference(before, after) or changed
        error = new_traceback(before, after)
        if error:
            result.error = f"{done}: the output shows a traceback ({error})"
        result.seconds = time.monotonic() - start
        return result
    result.error = (f"no figure or readout changed after: {'; '.join(tried)}"
                    if tried else "no control could be moved")
    result.seconds = time.monotonic() - start
    return result


def lab_kernel_idle(page) -> bool:
    indicator = page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator")
    return indicator.count() > 0 and indicator.first.get_attribute("data-status") == "idle"


def settle(page, root: str, timeout: float = 60) -> None:
    """Until the kernel is idle (JupyterLab) and the outputs stop changing."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator").count() and kernel_status(page) != "idle":
            time.sleep(0.25)
            continue
        now = snapshot(page, root)
        if now == last:
            return
        last = now
        time.sleep(0.5)


def screenshot(page, name: str, target=None) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if target is not None:
        try:
            target.evaluate("e => e.scrollIntoView({block: 'center'})")
            time.sleep(0.3)
        except Exception:  # the screenshot still helps
            pass
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return str(path.relative_to(REPO))


def failure_message(step: str, err: Exception, kernel: Callable[[], str] | None = None) -> str:
    """What the test was doing, what went wrong, and the kernel's state if it can still be read:
    "running all cells: TimeoutError: Timeout 30000ms exceeded (kernel 'busy')"."""
    lines = str(err).strip().splitlines()
    text = f"{step}: {type(err).__name__}" + (f": {lines[0]}" if lines else "")
    if kernel is not None:
        try:
            text += f" (kernel {kernel() or 'unknown'!r})"
        except Exception:  # the page itself is gone
            pass
    return text


def is_korean(name: str) -> bool:
    """A notebook of the Korean edition: ``ko/NAME.ipynb`` (names are relative to the notebooks' folder)."""
    return name.startswith("ko/")


def screenshot_stem(name: str) -> str:
    """``05_reptile.ipynb`` -> ``05_reptile``; ``ko/00_setup.ipynb`` -> ``ko-00_setup``."""
    return name.removesuffix(".ipynb").replace("/", "-")


def korean_fonts(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[str] | None:
    """The font files fontconfig has for Korean (``fc-list :lang=ko``), or None without fontconfig's fc-list."""
    if shutil.which("fc-list") is None:
        return None
    listing = run(["fc-list", ":lang=ko", "file"], capture_output=True, text=True, timeout=60).stdout
    return [line.strip() for line in listing.splitlines() if line.strip()]


def hangul_problems(fonts: list[str] | None, texts: list[str], glyphs: dict | None) -> list[str]:
    """Why a Korean notebook would not show its Hangul: no Korean font, no Hangul in the rendered
    markdown, or glyphs that come out as the same box (``glyphs``: what HANGUL_GLYPHS_JS returned)."""
    install = (f"install a Korean font (Debian/Ubuntu: apt-get install {KOREAN_FONT_PACKAGE}; "
               f"`make test-browser` does it as root)")
    problems = []
    if fonts == []:
        problems.append(f"no Korean font: `fc-list :lang=ko` lists none, so Hangul shows as boxes; {install}")
    if not any(HANGUL.search(text) for text in texts):
        problems.append("the rendered markdown contains no Hangul (is this the Korean edition? run make korean)")
    elif glyphs is None:
        problems.append("no rendered heading or paragraph with Hangul to check its glyphs")
    elif not (glyphs["inked"] and glyphs["distinct"]):
        problems.append(f"Hangul does not render: two different syllables in the page's font ({glyphs['font']}) "
                        f"come out as {'the same box' if glyphs['inked'] else 'nothing'}; {install}")
    return problems


def run_lab_notebook(context, base: str, folder: Path, name: str, index: int, args) -> NotebookResult:
    """``name`` in JupyterLab at ``base``, whose root is ``folder`` (the temporary copies)."""
    result = NotebookResult(name)
    stem = screenshot_stem(name)
    t0 = time.monotonic()
    page = context.new_page()
    step = "opening the notebook in JupyterLab"  # named in any failure message

    def open_and_run(page, workspace: str) -> dict | None:
        """Open the notebook, Run All, wait, save; the saved notebook (None if it did not save)."""
        nonlocal step
        t = time.monotonic()
        step = "opening the notebook in JupyterLab"
        page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}?reset")
        page.locator(PANEL).first.wait_for(timeout=90_000)
        page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator").first.wait_for(timeout=30_000)
        # Restarting a kernel that is still starting can leave it "starting" for good: wait first.
        step = "waiting for the kernel to start"
        if wait_for_kernel(lambda: kernel_status(page), lambda: restart_kernel(page),
                           args.kernel_timeout, args.kernel_timeout / 3):
            print(f"  {name}: the kernel needed a restart to start", flush=True)
        result.open_s = time.monotonic() - t
        t = time.monotonic()
        # Run All on the kernel that just started for this notebook (execution counts start at 1):
        # no Restart Kernel and Run All, whose reconnect loses messages on a busy machine
        # (see wait_for_run).
        step = "Run All Cells"
        run_all(page, args)
        step = "running all cells"
        wait_for_run(lambda: prompts(page), lambda: kernel_status(page), args.run_timeout, args.stall_timeout)
        result.run_s = time.monotonic() - t
        if "Select Kernel" in page.evaluate(DIALOG_TEXT_JS):  # it would block the save
            raise RunIncomplete("JupyterLab asked to select a kernel during Run All")
        step = "saving the notebook copy and reading it back"
        saved = save_and_read(page, folder / name)
        skipped = not_run(saved)
        if skipped:
            raise RunIncomplete(f"Run All left code cells {skipped[:8]} unrun and no cell raised")
        return saved

    try:
        try:
            saved = open_and_run(page, f"browser-test-{index}")
        except RunIncomplete as err:
            print(f"  {name}: {step}: {err}; starting over with a fresh kernel", flush=True)
            screenshot(page, f"{stem}-incomplete")
            page.close()
            shut_down_kernels(base, name)
            page = context.new_page()
            saved = open_and_run(page, f"browser-test-{index}-again")
        result.cells, problems = check_cells(saved, page)
        result.errors += problems
        failing = [int(m[1]) for p in problems if (m := re.match(r"code cell (\d+)", p))]
        result.failed_cell = failing[0] if failing else None
        if is_korean(name):
            step = "checking that the Korean notebook's Hangul renders"
            texts = page.locator(f"{PANEL} .jp-MarkdownCell .jp-RenderedMarkdown").all_inner_texts()
            result.errors += hangul_problems(korean_fonts(), texts, page.evaluate(HANGUL_GLYPHS_JS, PANEL))

        t2 = time.monotonic()
        step = "moving the widgets"
        widgets = [w for w in page.evaluate(TAG_WIDGETS_JS, [PANEL, ANY_CONTROL]) if w["controls"]]
        shot_target = None
        for widget in widgets:
            outcome = exercise_widget(page, PANEL, widget, args.change_timeout)
            result.widgets.append(outcome)
            box = page.locator(f"[data-bt-widget='{widget['index']}']").first
            if outcome.error:
                screenshot(page, f"{stem}-widget{widget['index']}-FAILED", box)
            elif shot_target is None or (outcome.changed == "figure" and shot_target[1] != "figure"):
                shot_target = (box, outcome.changed)
        result.widgets_s = time.monotonic() - t2
        if is_korean(name):  # the Korean text, not a widget: the title and aims
            shot_target = (page.locator(f"{PANEL} .jp-MarkdownCell").first, "text")
        result.screenshot = screenshot(page, stem, shot_target[0] if shot_target else None)
        try:
            menu(page, "Kernel", "Shut Down Kernel")
        except Exception:
            pass
    except BrowserTestError as err:
        result.errors.append(f"{step}: {err}")
    except Exception as err:  # a Playwright timeout or similar: say where it happened
        result.errors.append(failure_message(step, err, lambda: kernel_status(page)))
    finally:
        if not result.ok:
            try:
                target = (page.locator(f"{PANEL} .jp-CodeCell").nth(result.failed_cell)
                          if result.failed_cell is not None else None)
                result.screenshot = screenshot(page, f"{stem}-FAILED", target)
            except Exception:
                pass
        page.close()
        result.total_s = time.monotonic() - t0
    return result


# The slide on screen in a RISE (reveal.js) presentation: its position and the start of its text.
SLIDE_JS = """() => { const shown = [...document.querySelectorAll('.reveal .slides section.present')];
  if (!shown.length) return null;
  const inner = shown[shown.length - 1];
  return {hash: location.hash, text: inner.innerText.trim().slice(0, 60)}; }"""
SLIDE_STEPS = 3  # slides stepped through after the first


def is_local(url: str) -> bool:
    """True for the test's own servers and for data/blob URLs; anything else would leave the machine."""
    return url.startswith(("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "data:", "blob:", "about:"))


def run_slides(context, base: str, name: str, args) -> NotebookResult:
    """Present ``name`` as slides the way an instructor does: open it in JupyterLab, press the
    toolbar's RISE button (a reveal.js preview inside JupyterLab), step through SLIDE_STEPS slides
    with the space bar, and check that each step shows another slide and that the presentation
    asked for nothing outside the machine (RISE bundles reveal.js; a theme with web fonts would
    fetch them from a CDN)."""
    result = NotebookResult(f"slides: {name}")
    t0 = time.monotonic()
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: None if is_local(request.url) else outside.append(request.url))
    step = "opening the notebook in JupyterLab"
    try:
        page.goto(f"{base}/lab/workspaces/browser-test-slides/tree/{name}?reset")
        page.locator(PANEL).first.wait_for(timeout=90_000)
        step = "pressing the RISE slideshow button (is jupyterlab-rise installed? pip install -e '.[slides]')"
        page.locator(f'{PANEL} .jp-NotebookPanel-toolbar [data-command="RISE:preview"]').first.click(timeout=30_000)
        step = "waiting for the first slide"
        # A frame locator, not page.frames: Playwright's sync API updates that list only while it is
        # called, so a loop polling it never sees the frame navigate to /rise/.
        slides = page.frame_locator("iframe[src*='/rise/']").first
        slides.locator(".reveal .slides section.present").first.wait_for(timeout=args.run_timeout * 1000)
        current = lambda: slides.locator("body").evaluate(SLIDE_JS)  # noqa: E731
        shown = [current()]
        result.run_s = time.monotonic() - t0
        for i in range(1, SLIDE_STEPS + 1):
            step = f"stepping to slide {i + 1} with the space bar"
            slides.locator(".reveal").first.press("Space")
            moved = time.monotonic()
            while time.monotonic() < moved + args.change_timeout and current() == shown[-1]:
                page.wait_for_timeout(200)
            now = current()
            if now == shown[-1]:
                raise BrowserTestError(f"the slide did not change in {args.change_timeout:.0f} s "
                                       f"(still {now['hash']}: {now['text']!r})")
            shown.append(now)
        print("  slides shown: " + "; ".join(f"{s['hash']} {(s['text'].splitlines() or [''])[0][:40]!r}" for s in shown),
              flush=True)
        result.cells = len(shown)
        result.screenshot = screenshot(page, f"slides-{screenshot_stem(name)}")
        if outside:
            result.errors.append(f"the slides requested {len(outside)} URL(s) outside the machine (a CDN?): "
                                 f"{sorted(set(outside))[:5]}")
    except BrowserTestError as err:
        result.errors.append(f"{step}: {err}")
    except Exception as err:
        result.errors.append(failure_message(step, err))
    finally:
        if not result.ok:
            try:
                result.screenshot = screenshot(page, f"slides-{screenshot_stem(name)}-FAILED")
            except Exception:
                pass
        page.close()
        result.total_s = time.monotonic() - t0
    return result


def run_voila_notebook(context, base: str, name: str, args, render_timeout: float) -> NotebookResult:
    """Presentation mode: the notebook rendered by Voilà; move its first slider. A page that does not
    come within ``render_timeout`` seconds is marked ``stalled`` (see ``present_in_voila``)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    result = NotebookResult(f"voila: {name}")
    t0 = time.monotonic()
    page = context.new_page()
    root = "body"
    step = "rendering the notebook in Voila"
    try:
        try:
            page.goto(f"{base}/voila/render/{name}", timeout=render_timeout * 1000)
        except PlaywrightTimeout:
            result.stalled = True
            raise
        handle = page.locator(".noUi-handle").first
        handle.wait_for(timeout=args.run_timeout * 1000)
        settle(page, root)
        step = "moving its first slider"
        result.run_s = time.monotonic() - t0
        text = page.locator(root).inner_text()
        if TRACEBACK in text:
            result.errors.append("Voilà shows a traceback")
        widgets = [w for w in page.evaluate(TAG_WIDGETS_JS, [root, ".noUi-handle"]) if w["controls"]]
        t2 = time.monotonic()
        outcome = exercise_widget(page, root, {**widgets[0], "code_cell": -1}, args.change_timeout)
        outcome.control = outcome.control or "slider"
        result.widgets.append(outcome)
        result.widgets_s = time.monotonic() - t2
        box = page.locator(f"[data-bt-widget='{widgets[0]['index']}']").first
        result.screenshot = screenshot(page, f"voila-{screenshot_stem(name)}", box)
    except Exception as err:
        result.errors.append(failure_message(step, err))
        try:
            result.screenshot = screenshot(page, f"voila-{screenshot_stem(name)}-FAILED")
        except Exception:
            pass
    finally:
        page.close()
        result.total_s = time.monotonic() - t0
    return result


VOILA_TRIES = 3  # renders of the Voilà notebook, each on a fresh server, before the step fails


def present_in_voila(start: Callable[[], "Server"], render: Callable[["Server", float], NotebookResult],
                     stall_timeout: float, timeout: float, tries: int = VOILA_TRIES
                     ) -> tuple[NotebookResult, list["Server"]]:
    """Render one notebook in Voilà; a page that does not come within ``stall_timeout`` seconds is
    rendered again on a fresh Voilà server, up to ``tries`` renders in all (the last one gets
    ``timeout`` seconds). Returns the last result and every server started.

    Voilà executes the notebook before it sends the page, and Voilà 0.5 can stop sending cells to an
    idle kernel (https://github.com/voila-dashboards/voila/issues/1428): the page then never comes.
    With a core busy it happened in 3 of 10 runs, each time once (docs/browser-flake.md). A fresh
    server starts over; a result that is not a stall (a page that came, right or wrong) is final.
    """
    servers = [start()]
    result = render(servers[0], stall_timeout if tries > 1 else timeout)
    for attempt in range(2, tries + 1):
        if not result.stalled:
            break
        print(f"  {result.name}: no page after {stall_timeout:.0f} s (Voilà stopped executing the notebook; "
              "docs/browser-flake.md); again on a fresh Voilà server", flush=True)
        servers[-1].stop()
        servers.append(start())
        result = render(servers[-1], timeout if attempt == tries else stall_timeout)
        result.name += f" (server {attempt})"
    return result, servers


def choose_voila_notebook(results: list[NotebookResult], wanted: str | None) -> str | None:
    """The first notebook whose slider redrew a figure; else whose slider changed a readout."""
    if wanted:
        return Path(wanted).name if wanted.endswith(".ipynb") else f"{wanted}.ipynb"
    for kind in ("figure", "readout"):
        for r in results:
            if any(w.control.startswith("slider") and w.changed == kind and not w.error for w in r.widgets):
                return r.name
    return None


# --- the run ------------------------------------------------------------------------------------

def select_notebooks(names: list[str], folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks named (a name, its number or a path; ``ko/NAME`` for the Korean edition), or by
    default every English notebook and then KOREAN_NOTEBOOK (when the Korean edition has it)."""
    every = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("_"))
    if not names:
        return every + [p for p in [folder / KOREAN_NOTEBOOK] if p.exists()]
    chosen = []
    for name in names:
        korean = Path(name).parent.name == "ko"
        candidates = sorted(p for p in (folder / "ko").glob("*.ipynb") if not p.name.startswith("_")) if korean else every
        stem = Path(name).name.removesuffix(".ipynb")
        match = [p for p in candidates
                 if p.stem == stem or p.stem.startswith(stem + "_") or p.stem.split("_")[0] == stem]
        if not match:
            where = folder / "ko" if korean else folder
            raise SystemExit(f"error: no notebook {name!r} in {where} (have: {', '.join(p.name for p in candidates)})")
        chosen += [p for p in match if p not in chosen]
    return chosen


def relative_name(path: Path, folder: Path) -> str:
    """The notebook's path in the notebooks' folder, as JupyterLab names it: ``ko/00_setup.ipynb``."""
    return path.relative_to(folder).as_posix()


def fingerprints(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def format_table(results: list[NotebookResult]) -> str:
    width = max([len("notebook")] + [len(r.name) for r in results])
    lines = [f"{'notebook':<{width}}  {'cells':>5}  {'open':>5}  {'run all':>7}  {'widgets':>7}  {'total':>6}  result",
             "-" * (width + 50)]
    for r in results:
        cells = str(r.cells) if r.cells else "-"
        lines.append(f"{r.name:<{width}}  {cells:>5}  {r.open_s:>5.1f}  {r.run_s:>7.1f}  {r.widgets_s:>7.1f}  "
                     f"{r.total_s:>6.1f}  {'pass' if r.ok else 'FAIL'} ({len(r.widgets)} widgets)")
    return "\n".join(lines)


def report(results: list[NotebookResult]) -> None:
    for r in results:
        print(f"\n{r.name}: {'pass' if r.ok else 'FAIL'}" + (f"  [screenshot {r.screenshot}]" if r.screenshot else ""))
        for problem in r.errors:
            print(f"  FAIL: {problem}")
        for w in r.widgets:
            print(f"  {'FAIL: ' if w.error else 'ok:   '}{w.describe()} ({w.seconds:.1f} s)")
        if not r.widgets and not r.errors:
            print("  (no interactive widgets)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook names or paths, ko/NAME for the Korean edition "
                        f"(default: every notebook, then {KOREAN_NOTEBOOK.removesuffix('.ipynb')})")
    parser.add_argument("--no-voila", action="store_true", help="skip the Voilà (presentation mode) check")
    parser.add_argument("--no-slides", action="store_true", help="skip presenting a notebook as RISE slides")
    parser.add_argument("--slides", metavar="NOTEBOOK", help="the notebook to present as slides "
                        "(default: the first one tested)")
    parser.add_argument("--voila", metavar="NOTEBOOK", help="the notebook to open in Voilà (default: the first "
                        "whose slider redrew a figure)")
    parser.add_argument("--device", default=os.environ.get("MAML_LECTURE_DEVICE", "cpu"),
                        help="MAML_LECTURE_DEVICE for the kernels (default: cpu)")
    parser.add_argument("--run-timeout", type=float, default=600,
                        help="seconds for Run All of one notebook (default 600: the budget is 90)")
    parser.add_argument("--kernel-timeout", type=float, default=300,
                        help="seconds for a kernel to start (default 300); one restart after a third of it")
    parser.add_argument("--stall-timeout", type=float, default=60,
                        help="seconds a kernel may hold queued cells back ('starting', 'unknown') before "
                             "it is restarted and the cells run again")
    parser.add_argument("--change-timeout", type=float, default=30,
                        help="seconds to wait for an output to change after moving a control")
    parser.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR,
                        help="folder of the notebooks (default: notebooks/; for testing this script)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (copies and server logs)")
    args = parser.parse_args(argv)

    start = time.monotonic()
    folder = args.notebook_dir.resolve()
    notebooks = select_notebooks(args.notebooks, folder)
    slides_name = relative_name(select_notebooks([args.slides], folder)[0] if args.slides else notebooks[0], folder)
    if not Path(CHROMIUM).exists():
        print(f"error: no Chromium at {CHROMIUM}. Install Debian's (apt-get install chromium; `make test-browser` "
              "does it as root) or point $CHROMIUM at a Chromium or Chrome binary.", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("error: Playwright is not installed: .venv/bin/pip install -e '.[browser]' "
              "(`make test-browser` does it).", file=sys.stderr)
        return 2
    originals = fingerprints(notebooks)
    if not args.notebooks:
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()
    tmp = Path(tempfile.mkdtemp(prefix="maml-browser-test-"))
    results: list[NotebookResult] = []
    servers: list[Server] = []
    print(f"Browser test of {len(notebooks)} notebook(s) in {tmp} (kernels on {args.device}); "
          f"screenshots in {SCREENSHOTS.relative_to(REPO)}/", flush=True)
    try:
        copies, env = prepare_sandbox(tmp, args.device, folder)
        t = time.monotonic()
        lab = Server("JupyterLab", lab_args(copies), env, copies, tmp / "jupyterlab.log", "/api/status")
        servers.append(lab)
        print(f"JupyterLab up in {time.monotonic() - t:.1f} s at {lab.base}", flush=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1280, "height": 960})
            for i, path in enumerate(notebooks):
                r = run_lab_notebook(context, lab.base, copies, relative_name(path, folder), i, args)
                results.append(r)
                print(f"  {r.name}: {'pass' if r.ok else 'FAIL'} in {r.total_s:.1f} s "
                      f"(run all {r.run_s:.1f} s, {len(r.widgets)} widgets {r.widgets_s:.1f} s)", flush=True)
            if not args.no_slides:
                r = run_slides(context, lab.base, slides_name, args)
                results.append(r)
                print(f"  {r.name}: {'pass' if r.ok else 'FAIL'} in {r.total_s:.1f} s", flush=True)
            lab.stop()
            if not args.no_voila:
                name = choose_voila_notebook(results, args.voila)
                if name is None:
                    results.append(NotebookResult("voila", errors=["no notebook has a slider that changed an "
                                                                   "output in JupyterLab: nothing to present"]))
                else:
                    def start_voila() -> Server:
                        t = time.monotonic()
                        log = tmp / f"voila-{sum(x.name == 'Voila' for x in servers) + 1}.log"
                        server = Server("Voila", voila_args(copies), env, copies, log, "/")
                        servers.append(server)
                        print(f"Voilà up in {time.monotonic() - t:.1f} s at {server.base}", flush=True)
                        return server

                    r, _ = present_in_voila(start_voila,
                                            lambda server, limit: run_voila_notebook(context, server.base, name,
                                                                                     args, limit),
                                            args.kernel_timeout / 2.5, args.run_timeout)
                    results.append(r)
                    print(f"  {r.name}: {'pass' if r.ok else 'FAIL'} in {r.total_s:.1f} s", flush=True)
            browser.close()
    except BrowserTestError as err:
        results.append(NotebookResult("(setup)", errors=[str(err)]))
    finally:
        for server in servers:
            server.stop()
        if not all(r.ok for r in results):
            for server in servers:
                print(f"\n--- last lines of the {server.name} log ({server.log}) ---\n{tail(server.log)}")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    changed = [n for n, h in fingerprints(notebooks).items() if originals.get(n) != h]
    if changed:
        results.append(NotebookResult("(repository)", errors=[
            f"notebooks in notebooks/ changed during the test: {changed} (this test only writes its temporary "
            "copy: was someone editing them meanwhile?)"]))
    report(results)
    print("\n" + format_table(results))
    failed = [r.name for r in results if not r.ok]
    print(f"\nbrowser test: {len(results) - len(failed)} passed, {len(failed)} failed "
          f"in {time.monotonic() - start:.1f} s (servers and browser start included)")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

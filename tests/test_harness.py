"""The notebook test harness itself: strict nbval catches a wrong stored output, the sanitizer
hides only run-to-run noise, and every notebook is stored executed, error-free and with each
nbval marker explained. Also the GPU runner's no-GPU exit and its table."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
SANITIZE = REPO / "nbval_sanitize.cfg"
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if not p.name.startswith("_"))
MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION")


# --- strict nbval on a tiny notebook ---------------------------------------------------------

def _tiny_notebook(path: Path, answer: str, address: str) -> Path:
    """Two cells: a printed sum, and an object repr whose address changes on every run."""
    nb = new_notebook(
        cells=[
            new_code_cell("print(1 + 1)", execution_count=1,
                          outputs=[new_output("stream", name="stdout", text=answer)]),
            new_code_cell("class Thing:\n    pass\n\nprint(Thing())", execution_count=2,
                          outputs=[new_output("stream", name="stdout",
                                              text=f"<__main__.Thing object at {address}>\n")]),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)
    return path


def _nbval(notebook: Path, sanitize: bool = True) -> subprocess.CompletedProcess:
    """Run strict nbval the way `make test` does, in a separate pytest process."""
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env"]
    if sanitize:
        args.append(f"--nbval-sanitize-with={SANITIZE}")  # "=": a bare path would move pytest's rootdir
    return subprocess.run(args + [notebook.name], cwd=notebook.parent, capture_output=True,
                          text=True, timeout=120)


def test_strict_nbval_passes_right_output_and_fails_wrong_output(tmp_path):
    shutil.copy(REPO / "conftest.py", tmp_path / "conftest.py")  # brings the time table along
    # Any address: the real one differs on every run, so only the sanitizer can make this pass.
    good = _tiny_notebook(tmp_path / "good.ipynb", "2\n", "0x7f00deadbeef")
    bad = _tiny_notebook(tmp_path / "bad.ipynb", "3\n", "0x7f00deadbeef")

    run = _nbval(good)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"good\.ipynb\s+2\s+[\d.]+\s+pass", run.stdout), run.stdout  # time table row

    run = _nbval(bad)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert re.search(r"bad\.ipynb\s+2\s+[\d.]+\s+FAIL \(1 failed\)", run.stdout), run.stdout


def test_addresses_differ_without_the_sanitizer(tmp_path):
    run = _nbval(_tiny_notebook(tmp_path / "nb.ipynb", "2\n", "0x7f00deadbeef"), sanitize=False)
    assert run.returncode == 1 and "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr


def _sanitize(text: str) -> str:
    rules = re.findall(r"^regex: (.*)$\n^replace: (.*)$", SANITIZE.read_text(), flags=re.MULTILINE)
    assert rules, "nbval_sanitize.cfg has no regex/replace pairs"
    for regex, replace in rules:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("a, b", [
    ("<function f at 0x7f1a2b3c4d5e>", "<function f at 0x55d0c0ffee00>"),
    (" 40%|####      | 4/10 [00:01<00:02,  3.10it/s]", " 40%|####      | 4/10 [00:03<00:05,  1.20it/s]"),
    ("meta-training took 12.3 s", "meta-training took 9.8 s"),
    ("Wall time: 1.2 s", "Wall time: 850 ms"),
])
def test_sanitizer_hides_noise(a, b):
    assert _sanitize(a) == _sanitize(b)


@pytest.mark.parametrize("a, b", [
    ("query MSE after 1 step: 0.4912", "query MSE after 1 step: 0.4913"),
    ("5-way 1-shot accuracy: 98.7%", "5-way 1-shot accuracy: 97.7%"),
    ("<Figure size 640x480 with 1 Axes>", "<Figure size 640x480 with 2 Axes>"),
    ("total: 42 parameters", "total: 43 parameters"),
])
def test_sanitizer_keeps_numbers_that_teach(a, b):
    assert _sanitize(a) != _sanitize(b)


# --- every stored notebook ---------------------------------------------------------------------

def _code_cells(path: Path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_in_order(path):
    """Strict nbval skips cells without stored outputs, so an unexecuted notebook would pass."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3"
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"execution counts {counts}: re-run the notebook top to bottom (make notebooks NB={path.relative_to(REPO)})")
    assert any(c.outputs for c in cells), "no stored outputs at all"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_stored_errors(path):
    for i, cell in enumerate(_code_cells(path)):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"code cell {i} stores an error ({errors[0].ename}); catch and print it instead"


def marker_problems(source: str) -> list[str]:
    """The marker rule: a line naming an nbval marker is exactly `# NBVAL_...` (nbval ignores
    anything else on that line) and the next line is `# why: <reason>`."""
    problems = []
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if "NBVAL_" not in line:
            continue
        if line.strip().lstrip("#").strip() not in MARKERS or not line.strip().startswith("#"):
            problems.append(f"{line.strip()!r} is not a bare marker line such as '# NBVAL_IGNORE_OUTPUT'")
            continue
        why = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not re.fullmatch(r"#\s*why:\s*\S.*", why):
            problems.append(f"{line.strip()!r} is not followed by a '# why: <reason>' line")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_nbval_marker_says_why(path):
    problems = []
    for i, cell in enumerate(_code_cells(path)):
        problems += [f"code cell {i}: {p}" for p in marker_problems(cell.source)]
        tags = [t for t in cell.metadata.get("tags", []) if t.startswith("nbval") or t == "raises-exception"]
        if tags:
            problems.append(f"code cell {i}: tags {tags}: use a '# NBVAL_...' comment with a '# why:' line")
    assert not problems, "\n".join(problems)


def test_marker_rule():
    assert marker_problems("# NBVAL_IGNORE_OUTPUT\n# why: widget\n_ = interact(f, n=(0, 3))") == []
    assert marker_problems("x = 1  # no marker") == []
    assert marker_problems("# NBVAL_IGNORE_OUTPUT\nprint(1)")  # no reason
    assert marker_problems("# NBVAL_IGNORE_OUTPUT: widget\nprint(1)")  # nbval would not see it
    assert marker_problems("# NBVAL_SKIP\n# why:\nprint(1)")  # empty reason


# --- scripts/run_notebooks_gpu.py ----------------------------------------------------------

def _gpu_script():
    return load_script("run_notebooks_gpu")


def test_gpu_runner_exits_clearly_without_cuda():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "run_notebooks_gpu.py")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "No CUDA GPU" in run.stderr and "make test" in run.stderr


def test_gpu_runner_table():
    table = _gpu_script().format_table([
        ("01_maml_algorithm.ipynb", "NVIDIA H100 80GB HBM3", 12.345, "pass"),
        ("05_reptile.ipynb", "NVIDIA H100 80GB HBM3", 3.0, "FAIL: RuntimeError"),
    ])
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "device", "seconds", "result"]
    assert re.fullmatch(r"01_maml_algorithm\.ipynb\s+NVIDIA H100 80GB HBM3\s+12\.3\s+pass", lines[2])
    assert lines[3].endswith("FAIL: RuntimeError")
    assert lines[-1].split()[:2] == ["total", "15.3"]

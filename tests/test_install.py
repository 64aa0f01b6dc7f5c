"""A real install: `pip install -e .` into an environment that already has its own versions keeps
them, because pyproject.toml gives ranges; `-c constraints.txt` moves them to the tested pins.

The environment a student brings usually differs in its torch (a GPU build, a course's version).
Here only torch 2.13.0 has a CPU-only wheel (every other release pulls about 3 GB of CUDA
libraries), so the test shows the same resolver decision with numpy: a fresh venv gets torch 2.13.0
and numpy 2.2.6 (inside numpy's range, not its pin 2.3.5), then the package; both must stay.
(docs/compatibility.md records the same check with other torch releases.)

It builds a venv and installs JupyterLab and the rest from the pip cache or the registry: about
a minute and a half. So it runs only with MAML_LECTURE_INSTALL_TEST=1 (`make test-install`, which
.ci/run calls).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OTHER_NUMPY = "2.2.6"  # inside pyproject's numpy range, not the constraints.txt pin

pytestmark = pytest.mark.skipif(os.environ.get("MAML_LECTURE_INSTALL_TEST") != "1",
                                reason="builds a venv (~90 s): run with MAML_LECTURE_INSTALL_TEST=1 "
                                       "(make test-install)")


def run(*args: str | Path, timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def installed(python: Path, *names: str) -> dict[str, str]:
    code = "import sys, importlib.metadata as m; print(*(m.version(n) for n in sys.argv[1:]))"
    return dict(zip(names, run(python, "-c", code, *names).split()))


def test_install_keeps_the_versions_an_environment_has(tmp_path):
    from lecture_utils.versions import read_constraints

    pins = read_constraints()
    assert OTHER_NUMPY != pins["numpy"], "the demonstration needs a numpy other than the pin"
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    run(*pip, f"torch=={pins['torch']}", f"numpy=={OTHER_NUMPY}")
    before = installed(python, "torch", "numpy")

    log = run(*pip, "-e", REPO)  # what a student types into their own environment
    after = installed(python, "torch", "numpy", "maml-lecture")
    assert after["torch"] == before["torch"] and after["numpy"] == OTHER_NUMPY, (after, log[-2000:])
    assert "Uninstalling torch" not in log and "Uninstalling numpy" not in log

    # The pinned path instead moves numpy to the tested version (dry run: nothing changes).
    plan = run(*pip, "--dry-run", "-c", REPO / "constraints.txt", "-e", REPO)
    assert f"numpy-{pins['numpy']}" in plan, plan[-2000:]

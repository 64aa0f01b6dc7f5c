"""Other machines and other installs: a checkout path with spaces and non-ASCII characters, and
00_setup's version check (a warning on Colab's own versions, an error under `make test`)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]


# --- a checkout under a path with spaces and non-ASCII characters ------------------------------

@pytest.fixture(scope="module")
def odd_checkout(tmp_path_factory):
    """The package, one checkpoint with its manifest, and the sanitizer, under "my course é/…"."""
    root = tmp_path_factory.mktemp("portability") / "my course é" / "maml lecture (복사본)"
    shutil.copytree(REPO / "lecture_utils", root / "lecture_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "checkpoints").mkdir(parents=True)
    for name in ("manifest.json", "sine_maml_k10.pt"):
        shutil.copy(REPO / "checkpoints" / name, root / "checkpoints" / name)
    shutil.copy(REPO / "nbval_sanitize.cfg", root / "nbval_sanitize.cfg")
    return root


def _env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(root), "MAML_LECTURE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}


SCRIPT = """
from pathlib import Path
import torch
import lecture_utils
from lecture_utils.checkpoints import load_checkpoint, save_checkpoint
from lecture_utils.models import SineMLP
from lecture_utils.pretrained import load_pretrained

here = Path.cwd()
assert Path(lecture_utils.__file__).resolve().is_relative_to(here.resolve()), lecture_utils.__file__
model, entry = load_pretrained("sine_maml_k10", torch.device("cpu"))   # checksum against the manifest
path = save_checkpoint(here / "résultats 1" / "모델 a.pt", model, {"note": "é"})
again = SineMLP()
info = load_checkpoint(path, again)
assert info == {"note": "é"}
assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
print("ok", entry["sha256"][:12])
"""


def test_package_and_checkpoints_work_from_an_odd_path(odd_checkout):
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=odd_checkout, env=_env(odd_checkout),
                         capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = json.loads((REPO / "checkpoints" / "manifest.json").read_text())
    assert run.stdout.split() == ["ok", manifest["sine_maml_k10.pt"]["sha256"][:12]]


def test_strict_nbval_runs_a_notebook_from_an_odd_path(odd_checkout):
    source = ("from pathlib import Path\nimport lecture_utils\n"
              "print(Path(lecture_utils.__file__).parents[1].name)")
    nb = new_notebook(cells=[new_code_cell(source, execution_count=1, outputs=[
        new_output("stream", name="stdout", text=f"{odd_checkout.name}\n")])],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    notebooks = odd_checkout / "notebooks"
    notebooks.mkdir(exist_ok=True)
    (notebooks / "첫 노트북 é.ipynb").write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval",
                          "--nbval-current-env", "--nbval-sanitize-with", "nbval_sanitize.cfg",
                          "notebooks/첫 노트북 é.ipynb"],
                         cwd=odd_checkout, env=_env(odd_checkout), capture_output=True, text=True,
                         encoding="utf-8", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


# --- 00_setup: the version check ---------------------------------------------------------------

def _version_cell() -> str:
    cells = json.loads((REPO / "notebooks" / "00_setup.ipynb").read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    # the cell reads the pins through lecture_utils.versions (constraints.txt); older copies read pyproject.toml
    return next(s for s in sources if "STRICT" in s and ("pinned_versions" in s or "pyproject.toml" in s))


def _run_version_cell(monkeypatch, capsys, installed: dict, strict: bool):
    """Run 00_setup's version cell with ``installed`` in place of the real versions."""
    import importlib.metadata

    import lecture_utils.device

    if strict:
        monkeypatch.setenv("MAML_LECTURE_STRICT_PINS", "1")
    else:
        monkeypatch.delenv("MAML_LECTURE_STRICT_PINS", raising=False)

    def version(name):
        if installed.get(name) == "missing":
            raise importlib.metadata.PackageNotFoundError(name)
        return installed.get(name) or importlib.metadata.version(name)

    from lecture_utils.versions import pinned_versions

    namespace = {"os": os, "sys": sys, "tomllib": __import__("tomllib"), "Path": Path,
                 "version": version, "PackageNotFoundError": importlib.metadata.PackageNotFoundError,
                 "lecture_utils": lecture_utils, "pinned_versions": pinned_versions}
    exec(_version_cell(), namespace)
    return capsys.readouterr().out


def _pins() -> dict:
    from lecture_utils.versions import pinned_versions
    return pinned_versions()


def test_version_check_warns_about_other_versions(monkeypatch, capsys):
    pins = _pins()
    installed = {name: pinned for name, pinned in pins.items()}
    installed.update({"torch": "2.99.0+cu124", "jupyterlab": "missing"})  # a Colab-like machine
    out = _run_version_cell(monkeypatch, capsys, installed, strict=False)
    assert re.search(r"^torch\s+\S+\s+2\.99\.0\s+NO$", out, flags=re.MULTILINE), out
    assert re.search(r"^jupyterlab\s+\S+\s+missing\s+NO$", out, flags=re.MULTILINE), out
    assert "Warning: not the pinned versions: torch, jupyterlab." in out


def test_version_check_is_strict_under_make_test(monkeypatch, capsys):
    installed = {**_pins(), "numpy": "1.26.4"}
    with pytest.raises(AssertionError, match="not the pinned versions: numpy"):
        _run_version_cell(monkeypatch, capsys, installed, strict=True)
    capsys.readouterr()
    out = _run_version_cell(monkeypatch, capsys, _pins(), strict=True)  # the pinned set passes
    assert "Warning" not in out and " NO" not in out


def test_make_test_sets_strict_pins():
    makefile = (REPO / "Makefile").read_text()
    test_env = re.search(r"^TEST_ENV := (.*)$", makefile, flags=re.MULTILINE).group(1)
    assert "MAML_LECTURE_STRICT_PINS=1" in test_env.split()

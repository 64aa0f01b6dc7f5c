"""Fixtures shared by several test modules."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import torch

from lecture_utils.checkpoints import CHECKPOINTS_ENV


@pytest.fixture
def float64():
    """Build and compute in float64 for the duration of a test, from seed 0: exactness checks
    compare two computations far below float32 rounding. Use with
    ``pytestmark = pytest.mark.usefixtures("float64")``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def tmp_checkpoints(tmp_path, monkeypatch):
    """An empty checkpoints folder that load_pretrained, the retrain command and results.py use
    instead of the repository's (through ``$MAML_LECTURE_CHECKPOINTS``, which the processes a
    test starts inherit too)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv(CHECKPOINTS_ENV, str(folder))
    return folder


@pytest.fixture
def read_only():
    """``read_only(folder)`` makes ``folder`` (created if needed) unwritable until the test ends,
    also for root, whom file modes do not stop (then with ``chattr +i``); skips where neither works."""
    made = []

    def make(folder):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        made.append(folder)
        if _writable(folder) and shutil.which("chattr"):
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if _writable(folder):
            pytest.skip(f"cannot make {folder} read-only on this machine")
        return folder

    yield make
    for folder in made:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


def _writable(folder) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True

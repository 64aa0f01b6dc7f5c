"""Fixtures shared by several test modules."""
from __future__ import annotations

import pytest
import torch

from lecture_utils import pretrained


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
    """An empty checkpoints folder that load_pretrained uses instead of the repository's."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setattr(pretrained, "CHECKPOINTS", folder)
    monkeypatch.setattr(pretrained, "MANIFEST", folder / "manifest.json")
    return folder

"""``load_script(name)``: ``scripts/NAME.py`` imported as a module, for the tests of the command-line
scripts (they are files to run, not package modules)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """A fresh import of ``scripts/NAME.py``, registered in ``sys.modules`` under ``NAME`` (its
    dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

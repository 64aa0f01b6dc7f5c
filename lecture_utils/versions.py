"""The tested versions: what ``constraints.txt`` pins, for the version check in 00_setup.

    from lecture_utils.versions import pinned_versions
    pinned_versions()    # {"torch": "2.13.0", "numpy": "2.3.5", ...}: the runtime dependencies

``pyproject.toml`` gives ranges (the package works with any torch 2.x from the oldest supported
one on); ``constraints.txt`` pins the one set the stored notebook outputs were made with, which
``make lab`` and ``make test`` install. Both files live in the checkout beside this package.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
PYPROJECT = REPO / "pyproject.toml"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def normalize(name: str) -> str:
    """The PEP 503 form of a package name: case and the separators -, _ and . do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _checkout_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.name} is not beside the package ({path.parent}): the version check reads it from a "
            "checkout of the repository. Clone it and install from there: "
            "git clone <repository URL> && cd maml-lecture && pip install -c constraints.txt -e .")
    return path


def read_constraints(path: Path | None = None) -> dict[str, str]:
    """``{normalized name: version}`` for every ``name==version`` line of a constraints file.

    Comments and blank lines are skipped; any other line is an error that names it, because the
    file must pin exactly (a range there would let the tested set drift).
    """
    path = _checkout_file(CONSTRAINTS if path is None else Path(path))
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if not match:
            raise ValueError(f"{path.name} line {number}: {line!r} is not an exact pin; write it as name==version")
        name = normalize(match[1])
        if name in pins:
            raise ValueError(f"{path.name} line {number}: {match[1]} is pinned twice; keep one line")
        pins[name] = match[2]
    return pins


def runtime_requirements(path: Path | None = None) -> list[str]:
    """The ``[project] dependencies`` of pyproject.toml, as written (``"torch>=2.0,<3"``, ...)."""
    path = _checkout_file(PYPROJECT if path is None else Path(path))
    return tomllib.loads(path.read_text())["project"]["dependencies"]


def pinned_versions(constraints: Path | None = None, pyproject: Path | None = None) -> dict[str, str]:
    """``{"torch": "2.13.0", ...}``: the tested version of each runtime dependency.

    Names and their order come from pyproject.toml's dependencies, versions from constraints.txt;
    a runtime dependency without a pin there is an error naming it.
    """
    pins = read_constraints(constraints)
    out = {}
    for requirement in runtime_requirements(pyproject):
        name = _NAME.match(requirement.strip())[0]
        if normalize(name) not in pins:
            raise ValueError(f"constraints.txt does not pin the runtime dependency {name}; add {name}==<version>")
        out[name] = pins[normalize(name)]
    return out

"""The pins: pyproject.toml pins every dependency exactly, and environment.yml (for conda users)
asks for the same versions. Also: the README lists every notebook there is."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def normalize(name: str) -> str:
    """PEP 503 name: case and the separators -, _ and . do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, list[str]]:
    """{"dependencies": [...], "test": [...], ...} straight from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {"dependencies": project["dependencies"], **project.get("optional-dependencies", {})}


def pins(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        match = PIN.match(req.strip())
        assert match, f"{req!r} is not pinned as name==version"
        out[normalize(match[1])] = match[2]
    return out


def environment_yml() -> tuple[list[str], list[str]]:
    """A tiny reader for environment.yml: (conda dependencies, pip requirements).

    It understands the one shape the file uses: a `dependencies:` list whose items are
    strings, one of them a `pip:` sub-list. Comments and blank lines are skipped.
    """
    conda, pip, section = [], [], None
    for raw in (REPO / "environment.yml").read_text().splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent, text = len(line) - len(line.lstrip()), line.strip()
        if indent == 0:
            section = "dependencies" if text == "dependencies:" else None
        elif section and text == "- pip:":
            section = "pip"
        elif section == "pip" and text.startswith("- ") and indent > 4:
            pip.append(text[2:].strip())
        elif section and text.startswith("- "):
            section = "dependencies"
            conda.append(text[2:].strip())
    return conda, pip


def test_every_pyproject_dependency_is_pinned_exactly():
    for group, requirements in pyproject_requirements().items():
        assert requirements, f"{group} is empty"
        pins(requirements)  # asserts name==version for each


def test_environment_yml_pins_equal_pyproject():
    groups = pyproject_requirements()
    wanted = {**pins(groups["dependencies"]), **pins(groups["test"])}  # what `pip install -e .[test]` gets
    every = {name: v for reqs in groups.values() for name, v in pins(reqs).items()}
    _, pip = environment_yml()
    listed = pins([r for r in pip if not r.startswith("-e")])
    differ = {n: (v, every.get(n)) for n, v in listed.items() if every.get(n) != v}
    assert not differ, f"environment.yml vs pyproject.toml (yml, pyproject): {differ}"
    missing = sorted(set(wanted) - set(listed))
    assert not missing, f"environment.yml lacks {missing}"
    assert "-e ." in pip, "environment.yml should install the package itself with '-e .'"


def test_environment_yml_python_matches_requires_python():
    conda, _ = environment_yml()
    python = [d for d in conda if d.startswith("python")]
    assert python == ["python=3.11"], python
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"


def test_tiny_reader_agrees_with_yaml():
    """Where PyYAML happens to be installed (it comes with jupyter), cross-check the reader."""
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    conda = [d for d in data["dependencies"] if isinstance(d, str)]
    assert environment_yml() == (conda, pip)


def test_readme_lists_every_notebook():
    readme = (REPO / "README.md").read_text()
    for path in sorted((REPO / "notebooks").glob("[0-9]*.ipynb")):
        assert path.name in readme, f"README.md does not mention {path.name}"

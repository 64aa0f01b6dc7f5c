"""Ranges for the library, a lock for the stored outputs.

pyproject.toml gives every dependency a range (the oldest version the package works with, up to
the next major version), so that `pip install -e .` keeps a torch the environment already has.
constraints.txt pins each of them to the one version the stored notebook outputs were made with;
the Makefile installs with it, and environment.yml (conda cannot pass `-c`) lists the same pins.
Also: the README lists every notebook there is.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from lecture_utils import versions

REPO = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> dict[str, list[Requirement]]:
    """{"dependencies": [...], "test": [...], ...} straight from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"], **project.get("optional-dependencies", {})}
    return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


def every_requirement() -> dict[str, Requirement]:
    return {versions.normalize(r.name): r for reqs in pyproject_requirements().values() for r in reqs}


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


# --- pyproject.toml: ranges ---------------------------------------------------------------------

def test_no_dependency_is_an_exact_pin():
    for group, requirements in pyproject_requirements().items():
        assert requirements, f"{group} is empty"
        for req in requirements:
            operators = {spec.operator for spec in req.specifier}
            assert not operators & {"==", "==="}, (
                f"pyproject.toml {group}: {req} is an exact pin; give a range there "
                f"(name>=oldest,<next major) and put the pin in constraints.txt")
            assert ">=" in operators and "<" in operators, (
                f"pyproject.toml {group}: {req} needs a lower bound (>=) and an upper bound (<)")


def next_major(pinned: str) -> Version:
    """The first version of the next major series: 2.13.0 -> 3; 0.11.0 -> 0.12 (0.x breaks on minors)."""
    release = Version(pinned).release
    return Version(f"0.{release[1] + 1}") if release[0] == 0 else Version(str(release[0] + 1))


def test_ranges_end_at_the_next_major_version():
    pins = versions.read_constraints()
    for name, req in every_requirement().items():
        upper = [Version(s.version) for s in req.specifier if s.operator == "<"]
        assert upper == [next_major(pins[name])], (
            f"{req}: the upper bound should be <{next_major(pins[name])}, the next major version after the "
            f"tested {pins[name]}")


# --- constraints.txt: the lock ------------------------------------------------------------------

def test_every_dependency_has_one_pin_that_satisfies_its_range():
    pins = versions.read_constraints()  # raises on anything but name==version
    requirements = every_requirement()
    missing = sorted(set(requirements) - set(pins))
    assert not missing, f"constraints.txt pins none of {missing}"
    unused = sorted(set(pins) - set(requirements))
    assert not unused, f"constraints.txt pins {unused}, which pyproject.toml does not ask for"
    outside = {name: f"{pins[name]} not in {req.specifier}" for name, req in requirements.items()
               if not req.specifier.contains(pins[name], prereleases=True)}
    assert not outside, f"pins outside their pyproject.toml range: {outside}"


def test_torch_pin_is_the_cpu_build():
    """torch==2.13.0 is the one release with a CPU-only wheel; any other pulls ~3 GB of CUDA."""
    assert versions.read_constraints()["torch"] == "2.13.0"


def test_read_constraints_rejects_a_range(tmp_path):
    bad = tmp_path / "constraints.txt"
    bad.write_text("# comment\ntorch==2.13.0\nnumpy>=2\n")
    with pytest.raises(ValueError, match=r"line 3: 'numpy>=2' is not an exact pin; write it as name==version"):
        versions.read_constraints(bad)
    bad.write_text("torch==2.13.0\nTorch==2.12.0\n")
    with pytest.raises(ValueError, match="Torch is pinned twice"):
        versions.read_constraints(bad)


def test_pinned_versions_are_the_runtime_pins_in_pyproject_order():
    pins = versions.pinned_versions()
    runtime = [r.name for r in pyproject_requirements()["dependencies"]]
    assert list(pins) == runtime
    assert pins["torch"] == "2.13.0"
    assert all(pins[name] == versions.read_constraints()[versions.normalize(name)] for name in pins)


def test_pinned_versions_names_a_missing_pin(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch==2.13.0\n")
    with pytest.raises(ValueError, match="does not pin the runtime dependency numpy; add numpy==<version>"):
        versions.pinned_versions(constraints)
    with pytest.raises(FileNotFoundError, match="reads it from a checkout"):
        versions.pinned_versions(tmp_path / "absent.txt")


def test_makefile_installs_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^CONSTRAINTS := constraints\.txt$", makefile, flags=re.MULTILINE)
    pip_install = re.search(r"^PIP_INSTALL := (.*)$", makefile, flags=re.MULTILINE).group(1)
    assert "-m pip install" in pip_install and "-c $(CONSTRAINTS)" in pip_install
    # the pinned installs (.venv and its browser extra) go through PIP_INSTALL, and redo on a new pin
    for stamp in ("$(STAMP):", "$(BROWSER_STAMP):"):
        recipe = makefile.split(f"\n{stamp}", 1)[1].split("\n\n", 1)[0]
        assert "$(PIP_INSTALL) -e" in recipe and "pip install" not in recipe.replace("$(PIP_INSTALL)", ""), recipe
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(CONSTRAINTS\)$", makefile, flags=re.MULTILINE)


# --- environment.yml: the same pins for conda --------------------------------------------------

def test_environment_yml_lists_exactly_the_constraints():
    """conda's pip section cannot take `-c constraints.txt`, so it lists the same pins."""
    _, pip = environment_yml()
    assert "-e ." in pip, "environment.yml should install the package itself with '-e .'"
    listed = {}
    for req in (r for r in pip if not r.startswith("-e")):
        name, _, version = req.partition("==")
        assert version, f"environment.yml: {req!r} is not pinned as name==version"
        listed[versions.normalize(name)] = version
    pins = versions.read_constraints()
    differ = {n: (listed.get(n), pins.get(n)) for n in set(listed) | set(pins) if listed.get(n) != pins.get(n)}
    assert not differ, f"environment.yml vs constraints.txt (yml, constraints): {differ}"


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


# --- make compat and make test-install --------------------------------------------------------

def make_dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_make_compat_needs_a_torch_and_runs_the_compat_script():
    bare = subprocess.run(["make", "compat"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and "name a torch release, e.g. make compat TORCH=2.15.0" in bare.stdout
    run = make_dry_run("compat", "TORCH=2.15.0")
    assert run.returncode == 0 and "scripts/compat.py --torch 2.15.0" in run.stdout


def test_compat_refuses_a_torch_outside_the_range_before_installing(tmp_path):
    script = REPO / "scripts" / "compat.py"
    for torch, message in (("1.13.1", "outside pyproject.toml's range >=2.0.1,<3"),
                           ("3.0.0", "outside pyproject.toml's range"), ("2.x", "is not a release number")):
        run = subprocess.run([sys.executable, str(script), "--torch", torch], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode != 0 and message in run.stderr, (torch, run.stderr)
    assert not list(REPO.glob(".venv-compat-1.13.1")) and not list(REPO.glob(".venv-compat-2.x"))


def test_make_test_install_runs_the_install_test():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest-install:", 1)[1].split("\n\n", 1)[0]
    assert "MAML_LECTURE_INSTALL_TEST=1" in recipe and "tests/test_install.py" in recipe
    assert "make test-install" in (REPO / ".ci" / "run").read_text()

"""Every notebook, the template included, follows one skeleton (CONTRIBUTING.md, notebooks/_template.ipynb):

title and aims, "From the lecture", "Setup" with the one setup call, numbered sections, Summary,
Exercises, References; one heading style; sorted imports; and a first code cell that explains
itself when the notebook is opened outside the repository.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
STDLIB = set(sys.stdlib_module_names)


def cells(path):
    return nbformat.read(path, as_version=4).cells


def level2(path):
    return [line for c in cells(path) if c.cell_type == "markdown"
            for line in c.source.splitlines() if line.startswith("## ")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_skeleton_in_order(path):
    c = cells(path)
    assert c[0].cell_type == "markdown" and c[0].source.startswith("# ") and "\n## Aims\n" in c[0].source
    assert c[1].cell_type == "markdown" and re.match(r"## From the lecture( — notes: 「.+」)?\n", c[1].source)
    assert c[2].cell_type == "markdown" and c[2].source.startswith("## Setup\n")
    assert c[3].cell_type == "code"
    heads = level2(path)
    assert heads[:3] == ["## Aims", heads[1], "## Setup"]
    body, tail = heads[3:-3], heads[-3:]
    assert tail == ["## Summary", "## Exercises", "## References"], f"{path.name} ends with {tail}"
    numbers = [int(re.match(r"## (\d+)\. \S", h).group(1)) if re.match(r"## \d+\. \S", h) else None for h in body]
    assert None not in numbers, f"{path.name}: every section heading reads '## N. Title': {body}"
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: sections numbered {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_summary_exercises_and_references_are_cells_of_their_own(path):
    for c in cells(path):
        if c.cell_type == "markdown":
            found = [h for h in ("## Summary", "## Exercises", "## References") if re.search(rf"(?m)^{h}$", c.source)]
            assert len(found) <= 1 and (not found or c.source.startswith(found[0])), (
                f"{path.name}: {found} should each start a cell of its own:\n{c.source[:200]}")
    exercises = [line for c in cells(path) if c.cell_type == "markdown"
                 for line in c.source.splitlines() if line.startswith("### Exercise")]
    numbers = [int(re.match(r"### Exercise (\d+): \S", e).group(1)) for e in exercises]
    assert numbers == list(range(1, len(numbers) + 1)) and numbers, f"{path.name}: {exercises}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_setup_call_in_the_setup_cell(path):
    code = [c.source for c in cells(path) if c.cell_type == "code"]
    assert re.search(r"(?m)^device = setup\(", code[0])
    assert sum(len(re.findall(r"\bsetup\(", src)) for src in code) == 1, f"{path.name}: one setup() call"


def import_blocks(path):
    """The leading import statements of the setup cell and of the exercises' first cell, as groups."""
    sources = [c.source for c in cells(path) if c.cell_type == "code"]
    after = [i for i, c in enumerate(cells(path)) if c.cell_type == "markdown" and c.source.startswith("## Exercises")]
    exercise_cell = next(c.source for c in cells(path)[after[0]:] if c.cell_type == "code")
    for source in (sources[0], exercise_cell):
        lines = source.splitlines()
        if lines[0].startswith("try:"):  # the guard, then a blank line
            lines = lines[lines.index("") + 1:]
        block = []
        for line in lines:
            if not (line.startswith(("import ", "from ")) or line == ""):
                break
            block.append(line)
        yield [g.split("\n") for g in "\n".join(block).strip().split("\n\n")]


def module_of(line):
    return line.split()[1]


def group_kind(module):
    top = module.split(".")[0]
    return 0 if top in STDLIB else 2 if top == "lecture_utils" else 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_imports_are_sorted(path):
    for groups in import_blocks(path):
        kinds = [group_kind(module_of(g[0])) for g in groups]
        assert kinds == sorted(kinds) and len(set(kinds)) == len(kinds), (
            f"{path.name}: import groups standard library, third party, lecture_utils, in that order: {groups}")
        for g in groups:
            assert {group_kind(module_of(line)) for line in g} == {group_kind(module_of(g[0]))}, g
            plain = [line for line in g if line.startswith("import ")]
            froms = [line for line in g if line.startswith("from ")]
            assert g == plain + froms, f"{path.name}: `import x` lines before `from x import y` lines: {g}"
            for part in (plain, froms):
                keys = [module_of(line).lower() for line in part]
                assert keys == sorted(keys), f"{path.name}: sort by module: {part}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outside_the_repository_the_first_cell_says_what_to_do(path):
    """Opened in Colab or copied out of the repository, the notebook stops at its first cell with the
    lines to clone and install, instead of an ImportError further down."""
    first = next(c.source for c in cells(path) if c.cell_type == "code")
    guard = first.split("\n\n")[0]
    assert guard.startswith("try:")
    script = "import sys\nsys.modules['lecture_utils'] = None  # as if the package were not installed\n" + guard
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ModuleNotFoundError: This notebook needs the maml-lecture repository" in result.stderr
    assert "git clone" in result.stderr and "pip install -e ./maml-lecture" in result.stderr
    assert subprocess.run([sys.executable, "-c", guard], capture_output=True, cwd=REPO).returncode == 0

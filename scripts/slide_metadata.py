#!/usr/bin/env python3
"""Slide metadata for every notebook, so each presents as slides (RISE in JupyterLab, ``make slides``).

    python scripts/slide_metadata.py                 # set it in every notebook (notebooks/*.ipynb)
    python scripts/slide_metadata.py --check         # exit 1 listing the cells that lack it or differ
    python scripts/slide_metadata.py notebooks/01_maml_algorithm.ipynb

Each cell's ``metadata.slideshow.slide_type`` follows the notebook's own structure, the lecture's
sections (docs/slides.md):

=========================================================  ============
cell                                                       slide type
=========================================================  ============
markdown starting with ``# `` (the title) or ``## ``         ``slide``: one slide per section
markdown starting with ``### `` (a subsection, an exercise)  ``subslide``
markdown folding a solution (``<details>``)                  ``skip``: not shown in class
code that only sets up: imports, ``setup(...)``, constants   ``skip``
any other code cell (its figure, table or widget)            ``subslide``: one screen each
any other markdown (the text under a heading or a figure)    ``-``: stays on the slide above
=========================================================  ============

The notebook's own metadata gets ``rise`` settings (``RISE``): the reveal.js theme "white", one of
the three bundled themes that load no web font from a CDN (the default "simple" fetches two from
fonts.googleapis.com), and scrolling for a sub-slide taller than the screen.

Other metadata (nbval markers, tags, ``jupyter`` settings) is kept; a notebook whose slide types
already follow the rules is not rewritten. ``--check`` changes nothing: it lists every cell
without a slide type or with another one than the rules give, and exits 1 if there is any. The
files are written the way Jupyter writes them (one-space indent, sorted keys), so the diff shows
only the metadata.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
# Calls a setup cell may make besides imports and constants: the one call at the top of every notebook.
SETUP_CALLS = {"setup"}
# Notebook-level RISE settings; they take precedence over JupyterLab's. Themes without a CDN font:
# black, white, serif (jupyterlab-rise 0.43.1's bundle; docs/slides.md).
RISE = {"theme": "white", "scroll": True}


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def _is_constant(node: ast.AST) -> bool:
    """A literal, a name, an attribute (``torch.float64``) or arithmetic of them: no call."""
    return not any(isinstance(n, (ast.Call, ast.Lambda, ast.Await, ast.Yield, ast.NamedExpr)) for n in ast.walk(node))


def _is_setup_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SETUP_CALLS
            and all(_is_constant(a) for a in [*node.args, *(k.value for k in node.keywords)]))


def is_setup_code(text: str) -> bool:
    """Only imports, ``device = setup(...)`` and constants (``RETRAIN = False``), starting with an import."""
    try:
        body = ast.parse(text).body
    except SyntaxError:  # IPython magics and the like: show them
        return False
    if not body or not isinstance(body[0], (ast.Import, ast.ImportFrom)):
        return False
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.Expr) and _is_setup_call(stmt.value):
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None and (
                _is_constant(stmt.value) or _is_setup_call(stmt.value)):
            continue
        return False
    return True


def slide_type(cell: dict) -> str:
    """The slide type the rules give ``cell`` (see the table in this module's docstring)."""
    text = source(cell).lstrip()
    if cell["cell_type"] == "markdown":
        if text.startswith(("# ", "## ")):
            return "slide"
        if text.startswith("### "):
            return "subslide"
        if text.startswith("<details"):
            return "skip"
        return "-"
    if cell["cell_type"] == "code":
        return "skip" if is_setup_code(source(cell)) else "subslide"
    return "skip"  # raw cells


def problems(notebook: dict) -> list[str]:
    """One line per cell whose slide type is missing or not what the rules give (and one for the
    notebook's RISE settings if they differ)."""
    out = []
    have = notebook.get("metadata", {}).get("rise")
    if have is None or any(have.get(k) != v for k, v in RISE.items()):
        out.append(f"notebook metadata: rise settings {have!r}, the rules give {RISE!r}")
    for i, cell in enumerate(notebook["cells"]):
        want = slide_type(cell)
        have = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
        if have != want:
            first = source(cell).strip().splitlines()[0][:60] if source(cell).strip() else "(empty)"
            state = "no slide type" if have is None else f"slide type {have!r}"
            out.append(f"cell {i} ({cell['cell_type']}, {first!r}): {state}, the rules give {want!r}")
    return out


def apply(notebook: dict) -> int:
    """Set every cell's slide type and the notebook's RISE settings; returns how many cells (and
    settings) changed. Other metadata stays."""
    changed = 0
    rise = notebook.setdefault("metadata", {}).setdefault("rise", {})
    for key, value in RISE.items():
        if rise.get(key) != value:
            rise[key] = value
            changed += 1
    for cell in notebook["cells"]:
        slideshow = cell.setdefault("metadata", {}).setdefault("slideshow", {})
        want = slide_type(cell)
        if slideshow.get("slide_type") != want:
            slideshow["slide_type"] = want
            changed += 1
    return changed


def read(path: Path) -> dict:
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: cannot read {path} as a notebook: {err}") from err
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SystemExit(f"error: {path} has no list of cells: is it a Jupyter notebook?")
    return notebook


def write(path: Path, notebook: dict) -> None:
    """As Jupyter writes it: one-space indent, sorted keys, UTF-8, a final newline."""
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def default_notebooks() -> list[Path]:
    return sorted(p for p in (REPO / "notebooks").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: every notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing cells that lack it")
    args = parser.parse_args(argv)
    paths = args.notebooks or default_notebooks()
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"error: no such notebook: {', '.join(map(str, missing))}")
    notebooks = {path: read(path) for path in paths}  # every file is readable before any is written
    failed = 0
    for path, notebook in notebooks.items():
        name = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
        if args.check:
            found = problems(notebook)
            for line in found:
                print(f"{name}: {line}")
            failed += bool(found)
        else:
            changed = apply(notebook)
            if changed:
                write(path, notebook)
            print(f"{name}: {changed} changes ({len(notebook['cells'])} cells)")
    if args.check:
        if failed:
            print(f"\n{failed} of {len(notebooks)} notebooks lack slide metadata or differ from the rules: "
                  "run python scripts/slide_metadata.py", file=sys.stderr)
            return 1
        print(f"slide metadata complete in {len(notebooks)} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

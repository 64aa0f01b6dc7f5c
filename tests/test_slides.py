"""Slides for class: every notebook carries slide metadata (scripts/slide_metadata.py), and the
slideshow extension is pinned and loads nothing from the network (docs/slides.md)."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slide_metadata.py"


@pytest.fixture(scope="module")
def sm():
    return load_script("slide_metadata")


def md(text: str, **metadata) -> dict:
    return {"cell_type": "markdown", "metadata": metadata, "source": text}


def code(text: str, **metadata) -> dict:
    return {"cell_type": "code", "metadata": metadata, "source": text, "outputs": [], "execution_count": None}


def test_every_notebook_has_slide_metadata():
    """Every notebook presents as slides: a slide per section, code on sub-slides, setup skipped."""
    run = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr


@pytest.mark.parametrize("cell, expected", [
    (md("# 01 — The MAML algorithm"), "slide"),
    (md("## 1. One task: inner step"), "slide"),
    (md("### Exercise 1: one inner step by hand"), "subslide"),
    (md("<details><summary>Solution</summary>\n\n```python\nx = 1\n```\n</details>"), "skip"),
    (md("The meta-update is one gradient step."), "-"),
    (md("#### A minor heading"), "-"),
    (code("import torch\nfrom lecture_utils.notebook_setup import setup\n\nRETRAIN = False\n"
          "device = setup(seed=0)  # one line\nK, Q = 10, 10\nDTYPE = torch.float64\nCHANCE = 1 / 5"), "skip"),
    (code("import torch\n\nfrom lecture_utils.exercises.nb01 import check_inner_step"), "skip"),
    (code("import torch\nfamily = SinusoidTasks()\nprint(family)"), "subslide"),   # it shows something
    (code("seed_everything(0)\nmodel = SineMLP()"), "subslide"),
    (code("fig, ax = plt.subplots()\nax.plot([1, 2])"), "subslide"),
    (code("%matplotlib inline\nimport torch"), "subslide"),                         # not plain Python
    (code("import torch\ndef f(x):\n    return x"), "subslide"),
])
def test_slide_type_rules(sm, cell, expected):
    assert sm.slide_type(cell) == expected


def test_apply_keeps_other_metadata_and_check_lists_what_lacks_it(sm, tmp_path):
    notebook = {"cells": [md("# Title"), code("# NBVAL_IGNORE_OUTPUT\nx = f()", tags=["keep"]),
                          md("## Section", slideshow={"slide_type": "fragment"})],
                "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert sm.main(["--check", str(path)]) == 1
    found = sm.problems(json.loads(path.read_text()))
    assert found[0] == "notebook metadata: rise settings None, the rules give {'theme': 'white', 'scroll': True}"
    assert found[1].startswith("cell 0 (markdown, '# Title'): no slide type, the rules give 'slide'")
    assert found[3].startswith("cell 2 (markdown, '## Section'): slide type 'fragment', the rules give 'slide'")

    assert sm.main([str(path)]) == 0
    saved = json.loads(path.read_text())
    assert [c["metadata"]["slideshow"]["slide_type"] for c in saved["cells"]] == ["slide", "subslide", "slide"]
    assert saved["cells"][1]["metadata"]["tags"] == ["keep"]
    assert saved["metadata"] == {**notebook["metadata"], "rise": {"theme": "white", "scroll": True}}
    assert sm.main(["--check", str(path)]) == 0
    before = path.read_bytes()
    assert sm.main([str(path)]) == 0 and path.read_bytes() == before   # nothing to change: not rewritten


def test_written_like_jupyter_writes(sm, tmp_path):
    """Applied to an unchanged copy of a notebook, only the slideshow metadata differs."""
    original = REPO / "notebooks" / "00_setup.ipynb"
    path = tmp_path / original.name
    path.write_bytes(original.read_bytes())
    sm.main([str(path)])
    before, after = json.loads(original.read_text()), json.loads(path.read_text())
    for nb in (before, after):
        nb["metadata"].pop("rise", None)
        for cell in nb["cells"]:
            cell["metadata"].pop("slideshow", None)
    assert after == before
    assert path.read_text(encoding="utf-8").startswith('{\n "cells": [\n  {\n')


def test_bad_input_is_named_before_anything_is_written(sm, tmp_path):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    good.write_text(json.dumps({"cells": [md("# T")]}))
    bad.write_text("not json")
    before = good.read_bytes()
    with pytest.raises(SystemExit, match=r"cannot read .*bad.ipynb as a notebook"):
        sm.main([str(good), str(bad)])
    assert good.read_bytes() == before
    with pytest.raises(SystemExit, match="no such notebook"):
        sm.main([str(tmp_path / "absent.ipynb")])


# --- the slideshow extension ---------------------------------------------------------------------

def test_slideshow_extension_is_pinned_in_the_slides_extra():
    from lecture_utils.versions import read_constraints

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("jupyterlab-rise") for req in extras["slides"])
    assert read_constraints()["jupyterlab-rise"] == "0.43.1"


def test_browser_test_counts_only_requests_outside_the_machine():
    bt = load_script("browser_test")
    for url in ("http://127.0.0.1:8888/rise/00_setup.ipynb", "data:image/png;base64,AA", "blob:http://127.0.0.1/x"):
        assert bt.is_local(url), url
    for url in ("https://fonts.googleapis.com/css?family=Lato", "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js"):
        assert not bt.is_local(url), url


def test_make_slides_installs_the_extra_and_starts_jupyterlab():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nslides: $(SLIDES_STAMP)", 1)[1].split("\n\n", 1)[0]
    assert "jupyter lab --ServerApp.root_dir=notebooks" in recipe
    stamp = makefile.split("\n$(SLIDES_STAMP): $(STAMP)", 1)[1].split("\n\n", 1)[0]
    assert "$(PIP_INSTALL) -e '.[test,slides]'" in stamp
    browser = makefile.split("\n$(BROWSER_STAMP): $(STAMP)", 1)[1].split("\n\n", 1)[0]
    assert "slides" in browser, "make test-browser presents a notebook as slides: it needs the slides extra"

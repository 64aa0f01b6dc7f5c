"""Every decimal number a notebook's prose states is printed by a cell of the same notebook (or
written in its code), at the precision the prose gives it, or is a paper's number listed once in
``lecture_utils/papers.py``. So prose cannot drift from the outputs beside it unnoticed: re-executing
a notebook whose numbers moved fails here until the sentence is re-read (CONTRIBUTING.md,
"Re-reading prose when outputs change").

Words such as "a quarter" or "about 2 points" escape this check; CONTRIBUTING says how they are re-read.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lecture_utils.papers import cited_numbers

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NUMBER = re.compile(r"(?<![\w.])[-+−]?(\d+\.\d+)(%?)(?![\w.]*\d)")
# Not measurements: identifiers and citations that merely look like decimals.
NOT_A_MEASUREMENT = re.compile(r"(arXiv:|[Ss]ection |§|[Tt]able |torch |[Pp]ython |version |v)$")
CONSTANTS = {"1.96": "the normal 97.5% quantile of a 95% interval (training.mean_ci95)"}


def _text(cell) -> str:
    return "".join(cell["source"])


def _printed(notebook: dict) -> list[tuple[float, int]]:
    """Every decimal in the notebook's code and text outputs, as (value, decimals)."""
    parts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        parts.append(_text(cell))
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for kind in ("text/plain", "text/html", "text/markdown"):
                parts.append("".join(output.get("data", {}).get(kind, "")))
    return [(float(m.group(1)), len(m.group(1).split(".")[1]))
            for m in re.finditer(r"(?<![\w.])(\d+\.\d+)", "\n".join(parts))]


def _matches(value: float, decimals: int, percent: bool, printed, cited) -> bool:
    scales = (1.0, 100.0) if percent else (1.0,)
    candidates = [v * s for v, _ in printed for s in scales] + list(cited)
    return any(round(c, decimals) == value for c in candidates)


def unprinted_numbers(notebook: dict) -> list[str]:
    """The prose numbers of ``notebook`` that no cell prints: 'cell N: 1.02 in "...context..."'."""
    printed, cited, found = _printed(notebook), cited_numbers(), []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"`[^`]*`", "", _text(cell))  # inline code is code, not a claim
        for m in NUMBER.finditer(text):
            digits, percent = m.group(1), bool(m.group(2))
            if digits in CONSTANTS or NOT_A_MEASUREMENT.search(text[max(0, m.start() - 8):m.start()]):
                continue
            decimals = len(digits.split(".")[1])
            if not _matches(float(digits), decimals, percent, printed, cited):
                context = text[max(0, m.start() - 50):m.end() + 15].replace("\n", " ")
                found.append(f"cell {index}: {m.group(0)} in \"...{context}...\"")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_number_in_the_prose_is_printed_beside_it(path):
    missing = unprinted_numbers(json.loads(path.read_text()))
    assert not missing, (f"{path.name}: numbers in the prose that no cell prints (re-read these sentences "
                         "against the outputs, or print the number):\n  " + "\n  ".join(missing))


@pytest.mark.parametrize("name, stale", [("03_cost_and_approximations", "1.02"), ("05_reptile", "62.7%"),
                                         ("01_maml_algorithm", "0.4817")])
def test_a_stale_number_is_caught(name, stale):
    """The check fails on numbers that were once in the prose and no cell prints, injected into a copy."""
    path = REPO / "notebooks" / f"{name}.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"].insert(1, {"cell_type": "markdown", "metadata": {}, "source": [f"It scored {stale} here."]})
    assert any(stale in line for line in unprinted_numbers(notebook))


def test_a_paper_number_counts_at_the_precision_quoted():
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["Reptile: 97.7% (paper)."]}]}
    assert unprinted_numbers(notebook) == []   # 97.68 in papers.py, quoted to one decimal
    notebook["cells"][0]["source"] = ["Reptile: 97.9% (paper)."]
    assert unprinted_numbers(notebook)

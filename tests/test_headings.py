"""Headings that name the Korean lecture notes quote them word for word (CONTRIBUTING.md, "Every
notebook has the same skeleton"): the quoted words stand in 「」 after "— notes:", and no other
Korean appears in a heading, so a heading of our own is never presented as the notes' words."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTES = "lecture4-maml-notes.ko.txt"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
QUOTE = re.compile(r"「(.*?)」")
# The notes write formulas in LaTeX; headings transcribe them in Unicode.
LATEX = {r"\(\cfrac{d\phi_i}{d\theta}\)를 \(I\)로": "dφ_i/dθ를 I로",
         r"\(\cfrac{d\phi_i}{d\theta} \approx I\)": "dϕ_i/dθ ≈ I",
         r"\(\phi_i - \theta\)": "ϕ_i − θ"}


def headings():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("#"):
                        yield path.name, line


def test_korean_in_headings_is_quoted():
    for name, line in headings():
        outside = QUOTE.sub("", line)
        assert not HANGUL.search(outside), f"{name}: Korean outside a 「」 quote in {line!r}"
        if QUOTE.search(line):
            assert " — notes: 「" in line, f"{name}: a quote of the notes follows '— notes:' in {line!r}"


def _notes_text() -> str | None:
    for folder in (ROOT / "shared" / "lecture", ROOT.parent / "shared" / "lecture"):
        if (folder / NOTES).exists():
            text = (folder / NOTES).read_text()
            for latex, unicode in LATEX.items():
                text = text.replace(latex, unicode)
            text = re.sub(r"#\s*$", "", text, flags=re.M)   # the anchors after the notes' headings
            return re.sub(r"\s+", " ", text)
    return None


def test_quotes_are_the_notes_words():
    notes = _notes_text()
    if notes is None:
        pytest.skip(f"the lecture notes ({NOTES}) are not in shared/lecture/")
    for name, line in headings():
        for quote in QUOTE.findall(line):
            pattern = ".*?".join(re.escape(part.strip()) for part in quote.split("…"))
            assert re.search(pattern, notes), f"{name}: 「{quote}」 is not in the notes"

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


KOREAN_MAP = ROOT / "notebooks" / "ko" / "00_setup.ipynb"
MAP_ROW = re.compile(r"^\| `(\d\d_\w+\.ipynb)` \|([^|]*)\|")


def test_the_korean_map_names_each_notebook_by_the_notes_heading():
    """The Korean 00_setup's table of notebooks gives, for every notebook, the heading of the notes'
    section it teaches, quoted in 「」; every quote in that table is the notes' own words."""
    if not KOREAN_MAP.exists():
        pytest.skip("00_setup has no Korean edition yet")
    text = "\n".join("".join(cell["source"]) for cell in json.loads(KOREAN_MAP.read_text())["cells"]
                     if cell["cell_type"] == "markdown")
    rows = {m[1]: m[2] for m in map(MAP_ROW.match, text.splitlines()) if m}
    lessons = [p.name for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if p.name != "00_setup.ipynb"]
    missing = [name for name in lessons if not QUOTE.search(rows.get(name, ""))]
    assert not missing, f"ko/00_setup.ipynb: no row with the notes' section heading in 「」 for {missing}"
    notes = _notes_text()
    if notes is None:
        pytest.skip(f"the lecture notes ({NOTES}) are not in shared/lecture/")
    table = "\n".join(line for line in text.splitlines() if MAP_ROW.match(line))
    for quote in QUOTE.findall(table):
        assert re.search(re.escape(" ".join(quote.split())), notes), f"ko/00_setup.ipynb: 「{quote}」 is not in the notes"

"""The newcomer's docs stay short and true: the READMEs (English and Korean) fit a first read, every
relative link resolves, and every package function the map and the glossary name exists."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "README.ko.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_NAME = re.compile(r"`((?:lecture_utils\.)?([a-z_]+)\.([A-Za-z_][\w.]*))`")
MODULES = {p.stem for p in (ROOT / "lecture_utils").glob("*.py")} | {"widgets", "exercises"}


@pytest.mark.parametrize("name", ["README.md", "README.ko.md"])
def test_the_readme_fits_a_first_read(name):
    assert len((ROOT / name).read_bytes()) <= 8500


def _korean_notebook_not_built_yet(dest: Path) -> bool:
    """A link to notebooks/ko/NAME.ipynb while NAME has no translation file yet: the Korean edition's
    table lists every notebook, and tests/test_korean_sync.py names the ones still to translate."""
    return (dest.parent == ROOT / "notebooks" / "ko" and (ROOT / "notebooks" / dest.name).exists()
            and not (ROOT / "translations" / "ko" / dest.with_suffix(".yaml").name).exists())


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(re.sub(r"^#+ ", "", line).replace("`", "")) for line in text.splitlines()
            if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("<"):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() and not _korean_notebook_not_built_yet(dest):
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("page", [ROOT / "docs" / "map.md", ROOT / "docs" / "glossary.md", ROOT / "docs" / "package.md"],
                         ids=lambda p: p.name)
def test_every_package_name_the_docs_give_exists(page):
    missing = []
    for full, module, attribute in CODE_NAME.findall(page.read_text()):
        if module not in MODULES or attribute == "py":
            continue
        obj = importlib.import_module(f"lecture_utils.{module}")
        for part in attribute.split("."):
            if not hasattr(obj, part):
                if not (part == "py" or isinstance(obj, type(importlib)) and
                        importlib.util.find_spec(f"{obj.__name__}.{part}") is not None):
                    missing.append(full)
                break
            obj = getattr(obj, part)
    assert not missing, f"{page.name} names what the package does not have: {missing}"

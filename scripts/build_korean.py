#!/usr/bin/env python3
"""The Korean edition: notebooks/ko/NAME.ipynb, built from notebooks/NAME.ipynb and translations/ko/NAME.yaml.

    .venv/bin/python scripts/build_korean.py                # make korean: every notebook with a translation file
    .venv/bin/python scripts/build_korean.py _template      # one notebook (a name, or the path of either file)
    .venv/bin/python scripts/build_korean.py --check        # build in memory; exit 1 if a committed one differs
    .venv/bin/python scripts/build_korean.py --update 01_maml_algorithm   # start or bring up to date a translation file

**The translation file** (YAML) has one entry per markdown cell of the English notebook, in the order of
the cells: ``id`` (the English cell's id), ``hash`` (sha256 of the English cell's text, first 12 hex
digits), ``en`` (that English text: the Korean translates exactly it, and a later change of the English
is shown as a diff against it) and ``ko`` (the Korean text). Two optional fields: ``en_was``, written by
``--update`` when the English changed (the English the Korean was made from, until the Korean is
revised and the field deleted), and ``mostly_latin`` (why a cell may have little Hangul, e.g. a list of
English paper titles).

**The build** copies the English notebook and replaces the text of each markdown cell by its Korean;
code cells (source, outputs, execution counts, metadata), cell ids and the notebook's metadata stay
the English ones, byte for byte. The hash is of the markdown text only, so re-executing the English
notebooks changes no hash: ``make korean`` then carries the new outputs over and nothing needs
re-translating. A translation with any problem (a cell missing or out of date, a Korean text that lost
the notes' quote or a formula, or that is mostly untranslated) is refused with every problem listed,
before anything is written; each notebook is written whole or not at all.
``tests/test_korean_sync.py`` runs the same checks.

Code cells are shared, so printed outputs and the exercise checks' messages stay in English.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import json
import re
import sys
import textwrap
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lecture_utils.files import atomic_write

REPO = Path(__file__).resolve().parents[1]

HASH_LENGTH = 12
MIN_HANGUL_SHARE = 0.30   # of the letters of a Korean cell's prose (code, mathematics and quotes left out)
REQUIRED = ("id", "hash", "en", "ko")
OPTIONAL = ("en_was", "mostly_latin")
HEADER = """\
# The Korean text of notebooks/{name}.ipynb: one entry per markdown cell, in the order of the cells.
#   id     the English cell's id
#   hash   sha256 of the English cell's text, first 12 hex digits
#   en     the English text that ko translates (a later change of the English is shown as a diff against it)
#   ko     the Korean text
#   en_was (written by --update when the English changed) the English that ko was made from: revise ko
#          to the text in en, then delete this field
#   mostly_latin   (optional) why this cell may have little Hangul
# Build notebooks/ko/{name}.ipynb: make korean. `scripts/build_korean.py --update {name}` rewrites
# this file (comments other than this header are not kept). See CONTRIBUTING.md, "The Korean edition".
"""


class TranslationError(Exception):
    """A notebook or translation file that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a translation or a Korean notebook: where (notebook and cell), what, detail."""

    where: str
    what: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}"
        return text + ("\n" + textwrap.indent(self.detail, "    ") if self.detail else "")


@dataclass(frozen=True)
class Edition:
    """Where the files of one checkout are: the English notebooks, the Korean ones, the translations."""

    root: Path = REPO
    english_dir: Path = field(init=False)
    korean_dir: Path = field(init=False)
    translation_dir: Path = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "english_dir", self.root / "notebooks")
        object.__setattr__(self, "korean_dir", self.root / "notebooks" / "ko")
        object.__setattr__(self, "translation_dir", self.root / "translations" / "ko")

    def english(self, name: str) -> Path:
        return self.english_dir / f"{name}.ipynb"

    def korean(self, name: str) -> Path:
        return self.korean_dir / f"{name}.ipynb"

    def translation(self, name: str) -> Path:
        return self.translation_dir / f"{name}.yaml"

    def translated(self) -> list[str]:
        """The names of the notebooks that have a translation file."""
        return sorted(p.stem for p in self.translation_dir.glob("*.yaml"))

    def english_names(self) -> list[str]:
        return sorted(p.stem for p in self.english_dir.glob("*.ipynb"))

    def korean_names(self) -> list[str]:
        return sorted(p.stem for p in self.korean_dir.glob("*.ipynb"))


# --- reading -----------------------------------------------------------------------------------------

def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def text_hash(text: str) -> str:
    """sha256 of a markdown cell's text, first 12 hex digits: what a translation entry records."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def load_notebook(path: Path) -> dict:
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TranslationError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TranslationError(f"{path} is not a notebook (not JSON: {error})") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise TranslationError(f"{path} is not a notebook (no list of cells)")
    no_id = [i for i, cell in enumerate(cells) if not isinstance(cell.get("id"), str)]
    if no_id:
        raise TranslationError(
            f"{path}: cells {no_id} have no id (nbformat 4.5 gives every cell one); translations are keyed by "
            f"cell id. Fix: open and save the notebook in JupyterLab, or run "
            f"`jupyter nbconvert --to notebook --inplace {path}`")
    return notebook


def load_translation(path: Path, name: str) -> list[dict]:
    """The entries of a translation file, after checking its shape (the message names file and fix)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TranslationError(f"{path} does not exist: start it with "
                               f"`scripts/build_korean.py --update {name}`") from None
    return load_translation_text(text, name, path)


def load_translation_text(text: str, name: str, path: Path | str = "the translation file") -> list[dict]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TranslationError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict) or set(data) != {"notebook", "cells"} or not isinstance(data["cells"], list):
        raise TranslationError(f"{path}: expected the two keys `notebook` and `cells` (a list of entries)")
    if data["notebook"] != f"{name}.ipynb":
        raise TranslationError(f"{path}: `notebook: {data['notebook']}` but the file is for {name}.ipynb "
                               f"(a translation file is named after its notebook)")
    for number, entry in enumerate(data["cells"], 1):
        if not isinstance(entry, dict):
            raise TranslationError(f"{path}: entry {number} is not a mapping with the keys {', '.join(REQUIRED)}")
        missing = [key for key in REQUIRED if key not in entry]
        unknown = [key for key in entry if key not in REQUIRED + OPTIONAL]
        if missing or unknown:
            raise TranslationError(f"{path}: entry {number} (id {entry.get('id')!r}) lacks {missing} or has unknown "
                                   f"keys {unknown}; the keys are {', '.join(REQUIRED)}, and optionally "
                                   f"{', '.join(OPTIONAL)}")
        for key in entry:
            if not isinstance(entry[key], str):
                raise TranslationError(f"{path}: entry {number} (id {entry.get('id')!r}): `{key}` is not text "
                                       f"(got {entry[key]!r}); put it in quotes")
    return data["cells"]


# --- what must not change, and how much Hangul -------------------------------------------------------

FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n.*?^\1[ \t]*$", re.M | re.S)
DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?:[^$\n]|\n(?![ \t]*\n))+?\$")  # may span lines, not a paragraph
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.S)
NOTES_QUOTE = re.compile(r"「.*?」", re.S)
HTML_TAG = re.compile(r"<[^<>\n]+>")
URL = re.compile(r"https?://\S+|\]\([^)\s]*\)")
HEADING = re.compile(r"^(#{1,6}) ", re.M)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def fenced_blocks(text: str) -> list[str]:
    return [m.group(0) for m in FENCE.finditer(text)]


def kept_spans(text: str) -> list[str]:
    """Mathematics, code spans and quotes of the notes, outside code blocks: kept as they are in Korean.
    A line break inside one counts as a space (as in the rendered cell), so the Korean may wrap elsewhere."""
    text = FENCE.sub("", text)
    spans = DISPLAY_MATH.findall(text)
    text = DISPLAY_MATH.sub("", text)
    spans += [m.group(0) for m in CODE_SPAN.finditer(text)]
    text = CODE_SPAN.sub("", text)
    return [" ".join(span.split()) for span in spans + INLINE_MATH.findall(text) + NOTES_QUOTE.findall(text)]


def prose(text: str) -> str:
    """The words a translation translates: the text without code, mathematics, quotes, tags and links."""
    for pattern in (FENCE, DISPLAY_MATH, CODE_SPAN, INLINE_MATH, NOTES_QUOTE, HTML_TAG, URL):
        text = pattern.sub(" ", text)
    return text


def letters(text: str) -> tuple[int, int]:
    """(Hangul letters, Latin letters) of a text's prose. A Hangul syllable counts as its two or three
    letters (jamo), so that a Korean sentence and its English are measured alike."""
    hangul = latin = 0
    for char in unicodedata.normalize("NFD", prose(text)):
        if "\u1100" <= char <= "\u11ff" or "\u3131" <= char <= "\u318e":
            hangul += 1
        elif char.isalpha() and "LATIN" in unicodedata.name(char, ""):
            latin += 1
    return hangul, latin


def hangul_share(text: str) -> float | None:
    """The share of Hangul among the letters of a text's prose; None when it has none (a formula, code)."""
    hangul, latin = letters(text)
    return hangul / (hangul + latin) if hangul + latin else None


def heading_outline(text: str) -> list[tuple[int, list[str]]]:
    """Each heading of a cell (outside code blocks): its level and the quotes of the notes it holds."""
    return [(len(line) - len(line.lstrip("#")), NOTES_QUOTE.findall(line))
            for line in FENCE.sub("", text).splitlines() if HEADING.match(line)]


def korean_text_problems(where: str, english: str, entry: dict) -> list[Problem]:
    """What a Korean cell must keep from its English one, and whether it is translated at all."""
    korean, found = entry["ko"], []
    if fenced_blocks(english) != fenced_blocks(korean):
        diff = "\n".join(difflib.unified_diff("\n\n".join(fenced_blocks(english)).splitlines(),
                                              "\n\n".join(fenced_blocks(korean)).splitlines(),
                                              "English code blocks", "Korean code blocks", lineterm=""))
        found.append(Problem(where, "the code blocks differ from the English ones (code stays as it is)", diff))
    lost = [span for span in dict.fromkeys(kept_spans(english)) if span not in kept_spans(korean)]
    if lost:
        found.append(Problem(where, "mathematics, code or quotes of the notes are missing from the Korean "
                                    "(they stay as they are): " + ", ".join(lost)))
    numbers = [n for n in dict.fromkeys(NUMBER.findall(prose(english))) if n not in NUMBER.findall(korean)]
    if numbers:
        found.append(Problem(where, f"numbers of the English missing from the Korean: {', '.join(numbers)}"))
    if heading_outline(english) != heading_outline(korean):
        found.append(Problem(where, "the headings differ from the English ones (same levels, each keeping the "
                                    "notes' quote): English " + str(heading_outline(english))
                                    + ", Korean " + str(heading_outline(korean))))
    share = hangul_share(korean)
    if letters(english)[1] and not entry.get("mostly_latin") and (share or 0.0) < MIN_HANGUL_SHARE:
        first = next((line for line in prose(korean).splitlines() if line.strip()), "")
        found.append(Problem(where, f"mostly untranslated: {0 if share is None else round(100 * share)}% of its "
                                    f"letters are Hangul (at least {round(100 * MIN_HANGUL_SHARE)}% expected; code, "
                                    f"mathematics and quotes are not counted). If the cell rightly stays in Latin "
                                    f"letters (a list of English titles), say why in a `mostly_latin` field",
                             first.strip()[:200]))
    return found


# --- the translation against its English notebook -----------------------------------------------------

def stale_diff(before: str, now: str) -> str:
    return "\n".join(difflib.unified_diff(before.splitlines(), now.splitlines(),
                                          "English the Korean translates", "English now", lineterm=""))


def translation_problems(name: str, english: dict, entries: list[dict]) -> list[Problem]:
    """Every problem of a translation file against its English notebook, each naming notebook and cell."""
    markdown = {cell["id"]: source_of(cell) for cell in english["cells"] if cell["cell_type"] == "markdown"}
    notebook = f"{name}.ipynb"
    found, seen = [], set()
    for entry in entries:
        where = f"{notebook}, cell {entry['id']}"
        if entry["id"] in seen:
            found.append(Problem(where, "two entries for this cell in the translation file: delete one"))
            continue
        seen.add(entry["id"])
        if entry["id"] not in markdown:
            found.append(Problem(where, "the translation file has an entry for this cell, but the English notebook "
                                        f"has no markdown cell with this id (removed, or its id changed): run "
                                        f"`scripts/build_korean.py --update {name}`, which drops the entry or moves "
                                        f"it to the cell with the same text"))
            continue
        if entry["hash"] != text_hash(entry["en"]):
            found.append(Problem(where, f"`hash` {entry['hash']} is not the hash of `en` ({text_hash(entry['en'])}); "
                                        f"`en` must be the English text exactly: run "
                                        f"`scripts/build_korean.py --update {name}`"))
            continue
        now = markdown[entry["id"]]
        if "en_was" in entry:
            found.append(Problem(where, "the English changed after its translation: revise `ko` to the English in "
                                        "`en`, then delete `en_was`", stale_diff(entry["en_was"], entry["en"])))
        elif entry["hash"] != text_hash(now):
            found.append(Problem(where, f"the English changed after its translation: run "
                                        f"`scripts/build_korean.py --update {name}` (it records the new English and "
                                        f"keeps the old one as `en_was`), revise `ko`, then delete `en_was`",
                                 stale_diff(entry["en"], now)))
        if not entry["ko"].strip() and now.strip():
            found.append(Problem(where, "no Korean text yet (`ko` is empty): translate the English in `en`"))
        elif entry["en"] == now and "en_was" not in entry and entry["ko"].strip():
            found += korean_text_problems(where, now, entry)
    for cell_id in markdown:
        if cell_id not in seen:
            found.append(Problem(f"{notebook}, cell {cell_id}", f"this English markdown cell has no translation: run "
                                 f"`scripts/build_korean.py --update {name}` to add its entry, then write its `ko`",
                                 markdown[cell_id][:300]))
    return found


def build(english: dict, entries: list[dict]) -> dict:
    """The Korean notebook: the English one with each markdown cell's text replaced by its Korean."""
    korean_of = {entry["id"]: entry["ko"] for entry in entries}
    korean = copy.deepcopy(english)
    for cell in korean["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = korean_of[cell["id"]].splitlines(keepends=True)
    return korean


def dumps_notebook(notebook: dict) -> str:
    """The text nbformat writes (one-space indent, sorted keys, UTF-8 kept, a final newline)."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --- the committed Korean notebook against the English one -------------------------------------------

def edition_differences(name: str, english: dict, korean: dict) -> list[Problem]:
    """Where the Korean notebook is not the English one apart from markdown text: the cells (order, ids,
    types), each code cell (source, outputs, execution count, metadata), each markdown cell's metadata
    and attachments, the notebook's metadata."""
    where = f"ko/{name}.ipynb"
    found = []
    for key in ("metadata", "nbformat", "nbformat_minor"):
        if english.get(key) != korean.get(key):
            found.append(Problem(where, f"the notebook's {key} differs from the English edition's: run make korean"))
    shape = lambda nb: [(cell["id"], cell["cell_type"]) for cell in nb["cells"]]
    if shape(english) != shape(korean):
        found.append(Problem(where, "its cells (ids and types, in order) are not the English notebook's: run make korean",
                             f"English {shape(english)}\nKorean  {shape(korean)}"))
        return found
    for en_cell, ko_cell in zip(english["cells"], korean["cells"]):
        keys = sorted((set(en_cell) | set(ko_cell)) - ({"source"} if en_cell["cell_type"] == "markdown" else set()))
        differ = [key for key in keys if en_cell.get(key) != ko_cell.get(key)]
        if differ:
            what = {"source": "code", "outputs": "stored outputs", "execution_count": "execution count"}
            found.append(Problem(f"{where}, cell {en_cell['id']}",
                                 f"the {', '.join(what.get(key, key) for key in differ)} of this {en_cell['cell_type']} "
                                 f"cell differ from the English edition's: run make korean"))
    return found


def build_differences(name: str, built: str, committed: Path) -> list[Problem]:
    """Where the committed Korean notebook is not what the build produces, cell by cell."""
    where = f"ko/{name}.ipynb"
    if not committed.exists():
        return [Problem(where, f"{committed} does not exist: run make korean")]
    text = committed.read_text(encoding="utf-8")
    if text == built:
        return []
    try:
        old, new = json.loads(text), json.loads(built)
        cells = {cell.get("id"): cell for cell in old.get("cells", [])}
        changed = [cell["id"] for cell in new["cells"] if cells.get(cell["id"]) != cell]
    except (json.JSONDecodeError, AttributeError):
        changed = []
    detail = f"cells that differ: {', '.join(changed)}" if changed else "the cells are equal; the file's layout differs"
    return [Problem(where, "the committed Korean notebook is not what the build produces: run make korean", detail)]


# --- starting and updating a translation file --------------------------------------------------------

def updated_entries(english: dict, entries: list[dict]) -> list[dict]:
    """The entries brought up to the English notebook, in its order: a new cell gets an empty `ko`; a cell
    whose English changed gets the new `en` and `hash`, and keeps its Korean with the old English as
    `en_was`; an entry whose cell is gone is dropped, or moved to a new cell with exactly its English."""
    by_id = {entry["id"]: entry for entry in entries}
    markdown = [(cell["id"], source_of(cell)) for cell in english["cells"] if cell["cell_type"] == "markdown"]
    ids = {cell_id for cell_id, _ in markdown}
    by_text = {entry["en"]: entry for entry in entries if entry["id"] not in ids}
    result = []
    for cell_id, text in markdown:
        old = by_id.get(cell_id) or by_text.get(text)
        entry = {"id": cell_id, "hash": text_hash(text)}
        if old is None:
            entry.update(en=text, ko="")
        else:
            translated_from = old.get("en_was", old["en"])
            if translated_from != text:
                entry["en_was"] = translated_from
            entry.update(en=text, ko=old["ko"])
            if "mostly_latin" in old:
                entry["mostly_latin"] = old["mostly_latin"]
        result.append(entry)
    return result


class _Dumper(yaml.SafeDumper):
    """Multi-line text as YAML literal blocks (|), so that a cell reads and diffs as it is written."""


def _text(dumper, data):
    literal = "\n" in data and not any(c in data for c in "\r\x85\u2028\u2029") and \
        not any(line != line.rstrip() for line in data.splitlines())
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if literal else None)


_Dumper.add_representer(str, _text)


def dumps_translation(name: str, entries: list[dict]) -> str:
    body = yaml.dump({"notebook": f"{name}.ipynb", "cells": entries}, Dumper=_Dumper, allow_unicode=True,
                     sort_keys=False, width=10_000, indent=2)
    text = HEADER.format(name=name) + body
    if load_translation_text(text, name) != entries:  # the file must give back exactly the texts
        raise AssertionError(f"{name}: the YAML written does not read back as the same texts")
    return text


# --- the command line --------------------------------------------------------------------------------

def name_of(argument: str) -> str:
    path = Path(argument)
    return path.stem if path.suffix in (".ipynb", ".yaml") else argument


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:7]))
    parser.add_argument("names", nargs="*", help="notebook names (default: every translations/ko/*.yaml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="build in memory; exit 1 if a translation has a problem or a committed Korean notebook differs")
    mode.add_argument("--update", action="store_true",
                      help="write translations/ko/NAME.yaml brought up to the English notebook (created if missing)")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout (default: this one)")
    args = parser.parse_args(argv)

    edition = Edition(args.root.resolve())
    names = [name_of(n) for n in args.names] or edition.translated()
    unknown = [n for n in names if not edition.english(n).exists()]
    if unknown:
        parser.error(f"no English notebook {', '.join(str(edition.english(n)) for n in unknown)}; "
                     f"the notebooks are: {', '.join(edition.english_names())}")
    if not args.update:
        untranslated = [n for n in names if not edition.translation(n).exists()]
        if untranslated:
            parser.error(f"no translation file for {', '.join(untranslated)}: start one with "
                         f"`scripts/build_korean.py --update {' '.join(untranslated)}`")
    if not names:
        print(f"no translation files in {edition.translation_dir}: nothing to build")
        return 0

    try:
        if args.update:
            return update(edition, names)
        problems, texts = [], {}
        for name in names:
            english = load_notebook(edition.english(name))
            entries = load_translation(edition.translation(name), name)
            found = translation_problems(name, english, entries)
            problems += found
            if not found:
                texts[name] = dumps_notebook(build(english, entries))
    except TranslationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    if args.check:
        for name, text in texts.items():
            problems += build_differences(name, text, edition.korean(name))
        if not args.names:
            problems += [Problem(f"ko/{n}.ipynb", f"a Korean notebook without a translation file "
                                 f"({edition.translation(n).relative_to(edition.root)}): delete it, or add the file")
                         for n in edition.korean_names() if n not in names]
    if problems:
        print(f"{len(problems)} problem(s); nothing written:" if not args.check else f"{len(problems)} problem(s):",
              *map(str, problems), sep="\n", file=sys.stderr)
        return 1
    for name, text in texts.items():
        target = edition.korean(name)
        if args.check:
            print(f"{target.relative_to(edition.root)} is up to date")
        elif target.exists() and target.read_text(encoding="utf-8") == text:
            print(f"{target.relative_to(edition.root)} unchanged")
        else:
            write_text(target, text)
            print(f"wrote {target.relative_to(edition.root)}")
    return 0


def update(edition: Edition, names: list[str]) -> int:
    for name in names:
        english = load_notebook(edition.english(name))
        path = edition.translation(name)
        entries = load_translation(path, name) if path.exists() else []
        new = updated_entries(english, entries)
        text = dumps_translation(name, new)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            print(f"{path.relative_to(edition.root)} unchanged")
            continue
        write_text(path, text)
        todo = sum(not e["ko"].strip() for e in new) + sum("en_was" in e for e in new)
        print(f"wrote {path.relative_to(edition.root)}: {len(new)} cells, {todo} to translate or revise")
    return 0


if __name__ == "__main__":
    sys.exit(main())

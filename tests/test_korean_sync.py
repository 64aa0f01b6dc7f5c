"""The Korean edition keeps step with the English one (CONTRIBUTING.md, "The Korean edition").

notebooks/ko/NAME.ipynb is built by scripts/build_korean.py from notebooks/NAME.ipynb and
translations/ko/NAME.yaml. For every translation file present, these tests fail, naming the notebook
and the cell, when:

- an English markdown cell changed after its translation (the message shows the English diff);
- an English markdown cell has no translation (no entry, or an empty one);
- a Korean cell is mostly untranslated (under 30% of its letters Hangul; code, mathematics and quotes
  of the notes not counted), or lost what stays as it is: code blocks, mathematics, code spans, the
  notes' quotes, the numbers, the headings;
- a code cell, a stored output, an execution count or any metadata differs between the editions;
- the committed Korean notebook is not what the build produces, or has no translation file.

One more test lists the English notebooks that have no translation file yet: it xfails while there
are any (`pytest -rx` prints the list). The second half of this file injects each failure into a
temporary copy of the files and checks that the message names the cell.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
bk = load_script("build_korean")

EDITION = bk.Edition(REPO)
TRANSLATED = EDITION.translated()


def translation_problems(edition: bk.Edition, name: str) -> list[str]:
    english = bk.load_notebook(edition.english(name))
    return [str(p) for p in bk.translation_problems(name, english, bk.load_translation(edition.translation(name), name))]


def edition_problems(edition: bk.Edition, name: str) -> list[str]:
    if not edition.korean(name).exists():
        return [f"ko/{name}.ipynb does not exist: run make korean"]
    english, korean = bk.load_notebook(edition.english(name)), bk.load_notebook(edition.korean(name))
    return [str(p) for p in bk.edition_differences(name, english, korean)]


def build_problems(edition: bk.Edition, name: str) -> list[str]:
    english = bk.load_notebook(edition.english(name))
    entries = bk.load_translation(edition.translation(name), name)
    if bk.translation_problems(name, english, entries):
        return [f"{name}: the translation has problems (test_translation_is_current_and_complete lists them)"]
    built = bk.dumps_notebook(bk.build(english, entries))
    return [str(p) for p in bk.build_differences(name, built, edition.korean(name))]


def orphan_korean_notebooks(edition: bk.Edition) -> list[str]:
    return [f"notebooks/ko/{n}.ipynb" for n in edition.korean_names() if n not in edition.translated()]


# Code that would find other files through the working directory: the Korean notebooks run one folder
# deeper (notebooks/ko/), so every path must come from a module's __file__ (as lecture_utils does).
CWD_DEPENDENT = re.compile(r"\.\./|Path\.cwd\(|os\.getcwd\(|os\.chdir\(|^\s*%cd\b|"
                           r"[\"'](?:\./)?(?:data|checkpoints|results|notebooks|docs|scripts|tests|lecture_utils)/")


def cwd_dependent_lines(notebook: dict) -> list[str]:
    return [f"cell {cell['id']}: {line.strip()}" for cell in notebook["cells"] if cell["cell_type"] == "code"
            for line in bk.source_of(cell).splitlines() if CWD_DEPENDENT.search(line)]


def fail_listing(problems: list[str]) -> None:
    """Fail with the problems as the whole message: each names its cell, and a diff stays readable."""
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --- the committed files --------------------------------------------------------------------------

@pytest.mark.parametrize("name", TRANSLATED)
def test_translation_is_current_and_complete(name):
    """Every English markdown cell has a Korean text, made from the English as it is now, that keeps
    the code, mathematics, quotes, numbers and headings and is written in Korean."""
    fail_listing(translation_problems(EDITION, name))


@pytest.mark.parametrize("name", TRANSLATED)
def test_code_cells_and_outputs_are_the_english_ones(name):
    fail_listing(edition_problems(EDITION, name))


@pytest.mark.parametrize("name", TRANSLATED)
def test_the_committed_korean_notebook_is_the_build(name):
    if translation_problems(EDITION, name):
        pytest.skip("no build while the translation has problems (test_translation_is_current_and_complete lists them)")
    fail_listing(build_problems(EDITION, name))


def test_every_korean_notebook_has_a_translation_file():
    assert not orphan_korean_notebooks(EDITION), (
        f"Korean notebooks without a translation file in translations/ko/: {orphan_korean_notebooks(EDITION)}")


def test_every_english_notebook_has_a_translation():
    """The Korean edition is to cover every notebook. So far only the template is translated: the prose
    of the English notebooks is being corrected first, and translating text that is about to change is
    wasted work. While notebooks are missing this test xfails and names them."""
    missing = [n for n in EDITION.english_names() if n not in TRANSLATED]
    if missing:
        pytest.xfail(f"no Korean translation yet for {', '.join(m + '.ipynb' for m in missing)} "
                     f"(start one with: scripts/build_korean.py --update NAME)")


def test_code_cells_do_not_depend_on_the_working_directory():
    """The Korean notebooks run from notebooks/ko/ with the English code cells, byte for byte."""
    found = [f"{name}.ipynb, {line}" for name in EDITION.english_names()
             for line in cwd_dependent_lines(bk.load_notebook(EDITION.english(name)))]
    assert not found, "paths relative to the working directory:\n" + "\n".join(found)


def test_the_glob_of_the_english_notebooks_leaves_the_korean_folder_out():
    """make test gives nbval notebooks/*.ipynb, and the notebook tests glob the same: the Korean
    notebooks, whose code and outputs the tests above prove identical, are not run twice."""
    line = next(line for line in (REPO / "Makefile").read_text().splitlines() if line.startswith("NOTEBOOKS ="))
    assert "$(wildcard notebooks/*.ipynb)" in line and "ko" not in line, line


# --- each failure, injected into a temporary copy -----------------------------------------------------

NAME = "_template"


@pytest.fixture
def copy(tmp_path) -> bk.Edition:
    """A checkout with the template's three files: English, translation, Korean."""
    edition = bk.Edition(tmp_path)
    for path in (EDITION.english(NAME), EDITION.translation(NAME), EDITION.korean(NAME)):
        target = tmp_path / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    if all_problems(edition):
        pytest.skip(f"the committed {NAME} files are out of step (the tests above say where); "
                    f"the injected failures need a clean start")
    return edition


def all_problems(edition: bk.Edition) -> str:
    return "\n".join(translation_problems(edition, NAME) + edition_problems(edition, NAME)
                     + build_problems(edition, NAME) + orphan_korean_notebooks(edition))


def edit_notebook(path: Path, change) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    change({cell["id"]: cell for cell in notebook["cells"]}, notebook)
    path.write_text(bk.dumps_notebook(notebook), encoding="utf-8")


def edit_translation(edition: bk.Edition, change) -> None:
    entries = bk.load_translation(edition.translation(NAME), NAME)
    change({entry["id"]: entry for entry in entries}, entries)
    edition.translation(NAME).write_text(bk.dumps_translation(NAME, entries), encoding="utf-8")


def set_source(cell_id: str, text: str):
    def change(cells, _):
        cells[cell_id]["source"] = text.splitlines(keepends=True)
    return change


def main(edition: bk.Edition, *args: str, capsys) -> tuple[int, str]:
    code = bk.main([*args, "--root", str(edition.root)])
    out = capsys.readouterr()
    return code, out.out + out.err


ONE_WEIGHT = "The line `grad(spt_loss, θ)` for a model with one weight"


def test_a_changed_english_sentence_is_named_with_its_diff(copy, capsys):
    english = bk.source_of(next(c for c in bk.load_notebook(copy.english(NAME))["cells"] if c["id"] == "3a23a15b"))
    assert ONE_WEIGHT in english
    edit_notebook(copy.english(NAME), set_source("3a23a15b", english.replace("one weight", "a single weight")))
    problems = all_problems(copy)
    assert "_template.ipynb, cell 3a23a15b: the English changed after its translation" in problems
    assert f"-{ONE_WEIGHT}," in problems and "+The line `grad(spt_loss, θ)` for a model with a single weight," in problems
    before = copy.korean(NAME).read_bytes()
    code, out = main(copy, capsys=capsys)
    assert code == 1 and "nothing written" in out and "cell 3a23a15b" in out
    assert copy.korean(NAME).read_bytes() == before


def test_update_records_the_new_english_and_keeps_the_old_until_the_korean_is_revised(copy, capsys):
    english = bk.source_of(next(c for c in bk.load_notebook(copy.english(NAME))["cells"] if c["id"] == "3a23a15b"))
    edit_notebook(copy.english(NAME), set_source("3a23a15b", english.replace("one weight", "a single weight")))
    assert main(copy, "--update", NAME, capsys=capsys) == (0, f"wrote translations/ko/{NAME}.yaml: 9 cells, 1 to translate or revise\n")
    entry = {e["id"]: e for e in bk.load_translation(copy.translation(NAME), NAME)}["3a23a15b"]
    assert ONE_WEIGHT in entry["en_was"] and "a single weight" in entry["en"]
    assert entry["hash"] == bk.text_hash(entry["en"])
    problems = all_problems(copy)
    assert "cell 3a23a15b: the English changed after its translation: revise `ko`" in problems
    assert "+The line `grad(spt_loss, θ)` for a model with a single weight" in problems

    def revised(entries, _):
        del entries["3a23a15b"]["en_was"]  # the Korean ("가중치가 하나뿐인") already says it
    edit_translation(copy, revised)
    assert main(copy, capsys=capsys)[0] == 0
    assert all_problems(copy) == ""


def test_reexecuting_the_english_changes_no_translation(copy, capsys):
    """New outputs, execution counts and timing metadata: the translation stays valid and the
    rebuild carries them over; until then the Korean notebook is reported stale, cell by cell."""
    translation = copy.translation(NAME).read_bytes()

    def rerun(cells, _):
        for cell in cells.values():
            if cell["cell_type"] == "code":
                cell["execution_count"] += 10
                cell["metadata"]["execution"] = {"iopub.status.idle": "2027-01-01T00:00:00.000000Z"}
        cells["21fd088a"]["outputs"][0]["text"] = ["dL/dw at w = 0: -9.0\n"]
    edit_notebook(copy.english(NAME), rerun)
    assert translation_problems(copy, NAME) == []
    problems = all_problems(copy)
    assert ("ko/_template.ipynb, cell 21fd088a: the execution count, metadata, stored outputs of this code cell "
            "differ from the English edition's") in problems
    assert "cells that differ: c76901ab, 21fd088a, 4ee187fd, e7c68818" in problems
    assert main(copy, capsys=capsys) == (0, "wrote notebooks/ko/_template.ipynb\n")
    assert all_problems(copy) == "" and copy.translation(NAME).read_bytes() == translation


@pytest.mark.parametrize("key, value, what", [
    ("source", ["print('changed')"], "the code of this code cell"),
    ("outputs", [], "the stored outputs of this code cell"),
    ("execution_count", 99, "the execution count of this code cell"),
])
def test_a_code_cell_or_output_that_differs_between_the_editions_is_named(copy, key, value, what):
    def change(cells, _):
        cells["21fd088a"][key] = value
    edit_notebook(copy.korean(NAME), change)
    problems = all_problems(copy)
    assert f"ko/_template.ipynb, cell 21fd088a: {what} differ from the English edition's" in problems


def test_a_new_english_cell_without_translation_is_named(copy):
    def insert(_, notebook):
        notebook["cells"].insert(5, {"cell_type": "markdown", "id": "newcell1", "metadata": {},
                                     "source": ["## 2. A new section\n", "More prose."]})
    edit_notebook(copy.english(NAME), insert)
    assert "_template.ipynb, cell newcell1: this English markdown cell has no translation" in all_problems(copy)


def test_a_missing_or_empty_entry_is_named(copy):
    def drop(by_id, entries):
        entries.remove(by_id["66b11240"])
        by_id["7883372e"]["ko"] = ""
    edit_translation(copy, drop)
    problems = all_problems(copy)
    assert "_template.ipynb, cell 66b11240: this English markdown cell has no translation" in problems
    assert "_template.ipynb, cell 7883372e: no Korean text yet (`ko` is empty)" in problems


def test_an_entry_for_a_cell_the_english_no_longer_has_is_named(copy):
    def add(_, entries):
        entries.append({"id": "gone0001", "hash": bk.text_hash("Old"), "en": "Old", "ko": "옛 셀"})
    edit_translation(copy, add)
    assert "_template.ipynb, cell gone0001: the translation file has an entry for this cell, but the English" in all_problems(copy)


def test_a_blank_english_cell_needs_no_korean_and_a_doubled_entry_is_named(copy, capsys):
    def insert(_, notebook):
        notebook["cells"].insert(5, {"cell_type": "markdown", "id": "blank001", "metadata": {}, "source": []})
    edit_notebook(copy.english(NAME), insert)
    assert main(copy, "--update", NAME, capsys=capsys)[0] == 0 and main(copy, capsys=capsys)[0] == 0
    assert all_problems(copy) == ""

    def double(by_id, entries):
        entries.append(dict(by_id["66b11240"]))
    edit_translation(copy, double)
    assert "_template.ipynb, cell 66b11240: two entries for this cell" in all_problems(copy)


def test_a_hash_that_is_not_of_the_english_text_is_named(copy):
    def tamper(by_id, _):
        by_id["66b11240"]["hash"] = "000000000000"
    edit_translation(copy, tamper)
    assert "_template.ipynb, cell 66b11240: `hash` 000000000000 is not the hash of `en`" in all_problems(copy)


def test_an_untranslated_cell_is_named(copy):
    def untranslate(by_id, _):
        by_id["66b11240"]["ko"] = by_id["66b11240"]["en"]
    edit_translation(copy, untranslate)
    assert "_template.ipynb, cell 66b11240: mostly untranslated: 0% of its letters are Hangul" in all_problems(copy)


def test_a_cell_with_only_its_heading_translated_is_named(copy):
    def heading_only(by_id, _):
        entry = by_id["7d43d0f6"]
        entry["ko"] = entry["en"].replace("## Exercises", "## 연습 문제")
    edit_translation(copy, heading_only)
    assert "_template.ipynb, cell 7d43d0f6: mostly untranslated: 4% of its letters are Hangul" in all_problems(copy)


@pytest.mark.parametrize("english, korean, latin_ok", [
    ("$$\\phi_i = \\theta - \\alpha \\nabla_\\theta \\mathcal L$$", "$$\\phi_i = \\theta - \\alpha \\nabla_\\theta \\mathcal L$$", False),
    ("| $k$ | `loss` |\n|---|---|\n| 1 | 0.25 |", "| $k$ | `loss` |\n|---|---|\n| 1 | 0.25 |", False),
    ("## References\n- Finn, Abbeel, Levine (2017). *Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks*.",
     "## 참고자료\n- Finn, Abbeel, Levine (2017). *Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks*.", True),
])
def test_a_formula_a_table_of_numbers_or_a_justified_cell_may_have_no_hangul(english, korean, latin_ok):
    entry = {"id": "x", "hash": bk.text_hash(english), "en": english, "ko": korean}
    if latin_ok:
        assert "mostly untranslated" in str(bk.korean_text_problems("nb, cell x", english, entry))
        entry["mostly_latin"] = "a paper's authors and title"
    assert bk.korean_text_problems("nb, cell x", english, entry) == []


def test_a_formula_may_be_wrapped_elsewhere_but_not_changed():
    english = "The meta-loss $\\theta \\mapsto \\mathcal L(\\theta -\n\\alpha g)$ of one task."
    entry = {"id": "x", "hash": bk.text_hash(english), "en": english,
             "ko": "한 태스크의 메타 loss\n$\\theta \\mapsto \\mathcal L(\\theta - \\alpha g)$입니다."}
    assert bk.korean_text_problems("nb, cell x", english, entry) == []
    entry["ko"] = entry["ko"].replace("\\alpha g", "\\alpha\\, g")
    assert "are missing from the Korean" in str(bk.korean_text_problems("nb, cell x", english, entry))


def test_a_table_with_english_words_must_be_translated():
    english = "| model | loss |\n|---|---|\n| MAML | 0.25 |"
    entry = {"id": "x", "hash": bk.text_hash(english), "en": english, "ko": english}
    assert "nb, cell x: mostly untranslated" in str(bk.korean_text_problems("nb, cell x", english, entry)[0])


@pytest.mark.parametrize("cell_id, old, new, message", [
    ("a20158c5", "「Pseudo Code 1」", "「의사 코드 1」", "quotes of the notes are missing from the Korean (they stay as they are): 「Pseudo Code 1」"),
    ("3a23a15b", "$f(x; w) = w\\,x$", "$f(x; w) = wx$", "are missing from the Korean (they stay as they are): $f(x; w) = w\\,x$"),
    ("7883372e", "`torch.autograd.grad(loss, w)`", "`autograd.grad(loss, w)`", "missing from the Korean (they stay as they are): `torch.autograd.grad(loss, w)`"),
    ("7a98c068", "return grad_w", "return grad_w.item()", "the code blocks differ from the English ones"),
    ("7883372e", "−10", "−1", "numbers of the English missing from the Korean: 10"),
    ("cdff275f", "### 연습 문제 1", "#### 연습 문제 1", "the headings differ from the English ones"),
])
def test_a_korean_cell_that_lost_what_stays_as_it_is_is_named(copy, cell_id, old, new, message):
    def change(by_id, _):
        assert old in by_id[cell_id]["ko"]
        by_id[cell_id]["ko"] = by_id[cell_id]["ko"].replace(old, new)
    edit_translation(copy, change)
    assert f"_template.ipynb, cell {cell_id}: " in all_problems(copy) and message in all_problems(copy)


def test_a_hand_edited_korean_notebook_is_not_the_build(copy, capsys):
    edit_notebook(copy.korean(NAME), set_source("66b11240", "## 준비\n\n손으로 고친 문장."))
    problems = all_problems(copy)
    assert "ko/_template.ipynb: the committed Korean notebook is not what the build produces" in problems
    assert "cells that differ: 66b11240" in problems
    code, out = main(copy, "--check", capsys=capsys)
    assert code == 1 and "cells that differ: 66b11240" in out
    assert "손으로 고친 문장" in copy.korean(NAME).read_text(encoding="utf-8")  # --check writes nothing
    assert main(copy, capsys=capsys)[0] == 0 and main(copy, "--check", capsys=capsys) == (
        0, "notebooks/ko/_template.ipynb is up to date\n")


def test_a_korean_notebook_without_translation_file_is_named(copy, capsys):
    shutil.copy(copy.korean(NAME), copy.korean_dir / "99_extra.ipynb")
    assert "notebooks/ko/99_extra.ipynb" in all_problems(copy)
    code, out = main(copy, "--check", capsys=capsys)
    assert code == 1 and "ko/99_extra.ipynb: a Korean notebook without a translation file" in out


def test_the_build_writes_the_english_code_cells_byte_for_byte(copy, capsys):
    copy.korean(NAME).unlink()
    english_before = copy.english(NAME).read_bytes()
    assert main(copy, capsys=capsys) == (0, "wrote notebooks/ko/_template.ipynb\n")
    english = json.loads(english_before)
    korean = json.loads(copy.korean(NAME).read_text(encoding="utf-8"))
    assert copy.english(NAME).read_bytes() == english_before
    for en_cell, ko_cell in zip(english["cells"], korean["cells"], strict=True):
        assert en_cell["id"] == ko_cell["id"]
        if en_cell["cell_type"] == "code":
            assert bk.dumps_notebook(en_cell) == bk.dumps_notebook(ko_cell)
    assert korean["metadata"] == english["metadata"]
    assert copy.korean(NAME).read_text(encoding="utf-8") == EDITION.korean(NAME).read_text(encoding="utf-8")


def test_update_starts_a_translation_file_and_moves_an_entry_whose_cell_id_changed(copy, capsys):
    def new_id(cells, _):
        cells["66b11240"]["id"] = "setup001"
    edit_notebook(copy.english(NAME), new_id)
    assert main(copy, "--update", NAME, capsys=capsys)[0] == 0
    entries = {e["id"]: e for e in bk.load_translation(copy.translation(NAME), NAME)}
    assert "66b11240" not in entries and entries["setup001"]["ko"].startswith("## 준비")

    copy.translation(NAME).unlink()
    assert main(copy, "--update", NAME, capsys=capsys) == (
        0, f"wrote translations/ko/{NAME}.yaml: 9 cells, 9 to translate or revise\n")
    assert "no Korean text yet" in "\n".join(translation_problems(copy, NAME))


@pytest.mark.parametrize("text, message", [
    ("cells: [\n", "is not valid YAML"),
    ("notebook: other.ipynb\ncells: []\n", "`notebook: other.ipynb` but the file is for _template.ipynb"),
    ("notebook: _template.ipynb\ncells:\n- id: 12345678\n  hash: abc\n  en: x\n  ko: y\n", "`id` is not text (got 12345678); put it in quotes"),
    ("notebook: _template.ipynb\ncells:\n- id: a\n  en: x\n  ko: y\n", "lacks ['hash']"),
])
def test_a_broken_translation_file_is_refused_naming_it(copy, capsys, text, message):
    copy.translation(NAME).write_text(text, encoding="utf-8")
    before = copy.korean(NAME).read_bytes()
    code, out = main(copy, capsys=capsys)
    assert code == 1 and str(copy.translation(NAME)) in out and message in out
    assert copy.korean(NAME).read_bytes() == before


def test_unknown_or_untranslated_names_are_refused_before_any_work(copy, capsys):
    with pytest.raises(SystemExit):
        bk.main(["99_nothing", "--root", str(copy.root)])
    assert "no English notebook" in capsys.readouterr().err
    shutil.copy(copy.english(NAME), copy.english("01_other"))
    with pytest.raises(SystemExit):
        bk.main(["01_other", "--root", str(copy.root)])
    assert "no translation file for 01_other: start one with" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["line with trailing space \nnext", "\tindented\nby a tab", "  leading\nspaces",
                                  "one line: with a colon", "ends with newlines\n\n", "carriage\r\nreturn", "'quoted'\n# hash"])
def test_any_cell_text_survives_the_translation_file(text):
    entries = [{"id": "a1", "hash": bk.text_hash(text), "en": text, "ko": text}]
    assert bk.load_translation_text(bk.dumps_translation(NAME, entries), NAME) == entries


def test_a_path_relative_to_the_working_directory_is_found():
    cell = {"cell_type": "code", "id": "c1", "source": ["import json\n", "data = json.load(open('../results/x.json'))"]}
    assert cwd_dependent_lines({"cells": [cell]}) == ["cell c1: data = json.load(open('../results/x.json'))"]
    cell["source"] = ["REPO = Path(lecture_utils.device.__file__).resolve().parents[1]"]
    assert cwd_dependent_lines({"cells": [cell]}) == []

"""The classroom tooling, without a browser: the results table (scripts/results.py), the static
HTML (scripts/build_html.py), the browser test's pure parts (scripts/browser_test.py) and the
make targets that tie them together. `make test-browser` runs the real browser."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if not p.name.startswith("_"))
KOREAN_NOTEBOOKS = sorted(p for p in (REPO / "notebooks" / "ko").glob("*.ipynb") if not p.name.startswith("_"))
HANGUL = re.compile(r"[\uac00-\ud7a3]")
PAPER_NUMBERS = ("98.7", "95.8", "98.3", "89.4", "97.68", "89.43")


@pytest.fixture(scope="module")
def results():
    return load_script("results")


@pytest.fixture(scope="module")
def evaluated_checkpoints():
    """The checkpoints results.py evaluates: registered recipes whose file exists (default data)."""
    from lecture_utils.checkpoints import REPO_CHECKPOINTS
    from lecture_utils.pretrained import RECIPES

    def file(r):
        return f"{r.name}.pt" if r.family == "sinusoid" else f"{r.name}-omniglot-minimal.pt"

    return {name: file(r) for name, r in RECIPES.items() if (REPO_CHECKPOINTS / file(r)).exists()}


# --- scripts/results.py -------------------------------------------------------------------------

def test_results_table_has_paper_numbers_and_ours(results, evaluated_checkpoints, tmp_path, monkeypatch):
    monkeypatch.delenv("MAML_LECTURE_OMNIGLOT", raising=False)
    out = tmp_path / "RESULTS.md"
    assert results.main(["--tasks", "4", "--device", "cpu", "--out", str(out)]) == 0
    text = out.read_text()
    for number in PAPER_NUMBERS:
        assert number in text, f"paper number {number} missing"
    assert "## Gaps" in text and "95% interval" in text
    for name in evaluated_checkpoints:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"no table row for {name}"
        assert re.search(r"\d\.\d+ ± \d\.\d+", row), f"no 'mean ± interval' in the row of {name}: {row}"


def test_results_without_checkpoints_still_quotes_the_papers(results, tmp_checkpoints, tmp_path, monkeypatch):
    from lecture_utils import pretrained

    monkeypatch.delenv("MAML_LECTURE_OMNIGLOT", raising=False)
    out = tmp_path / "RESULTS.md"
    assert results.main(["--tasks", "4", "--device", "cpu", "--out", str(out)]) == 0
    text = out.read_text()
    for number in PAPER_NUMBERS:
        assert number in text
    assert "No character checkpoint exists yet" in text and "No sinusoid checkpoint exists yet" in text
    for name in pretrained.RECIPES:
        assert f"`{name}`" in text, f"{name} not listed as not trained yet"


def test_results_rows_match_papers_by_method(results):
    assert results.paper_cell(("MAML", 5, 1)).startswith("98.7 ± 0.4%")
    assert results.paper_cell(("first-order MAML", 20, 1)).startswith("89.4 ± 0.5%")
    assert results.paper_cell(("Reptile", 5, 1)).startswith("97.68%") and "transductive" in results.paper_cell(("Reptile", 5, 1))
    assert results.paper_cell(("black-box meta-learner", 5, 1)).startswith("—")


def test_committed_results_cover_every_checkpoint(evaluated_checkpoints):
    """results/RESULTS.md is regenerated after every (re)training: it names each checkpoint's checksum."""
    from lecture_utils.checkpoints import REPO_CHECKPOINTS, CheckpointStore

    path = REPO / "results" / "RESULTS.md"
    assert path.exists(), "results/RESULTS.md is missing: run `make results`"
    text = path.read_text()
    manifest = CheckpointStore(REPO_CHECKPOINTS).read_manifest()
    stale = [f for f in evaluated_checkpoints.values() if f"| `{f}` | `{manifest[f]['sha256'][:12]}` |" not in text]
    assert not stale, f"results/RESULTS.md is stale for {stale}: run `make results` and commit it"


# --- scripts/build_html.py ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def build_html():
    return load_script("build_html")


def test_index_lists_every_notebook_with_title_and_section(build_html):
    table = build_html.readme_table()
    pages = [build_html.describe(p, table) for p in NOTEBOOKS]
    index = build_html.index_html(pages)
    for page in pages:
        assert f'href="{page.notebook.stem}.html"' in index, page.notebook.name
        assert page.title and page.title[:2].isdigit(), f"{page.notebook.name}: title {page.title!r}"
        assert page.section, page.notebook.name
    for name in (p.name for p in NOTEBOOKS):
        assert name in table, f"README's notebook table lacks {name}: the index takes its section from there"


def test_index_lists_the_korean_edition_after_the_english_with_korean_titles(build_html):
    english = [build_html.describe(p, build_html.readme_table()) for p in NOTEBOOKS]
    table = build_html.readme_table(REPO / "README.ko.md")
    korean = [build_html.describe(p, table) for p in KOREAN_NOTEBOOKS]
    assert korean, "no Korean notebook in notebooks/ko/"
    index = build_html.index_html(english + korean)
    assert index.index("<h2>English</h2>") < index.index("<h2>한국어</h2>")
    for page in korean:
        link = f'href="ko/{page.notebook.stem}.html"'
        assert link in index and index.index(link) > index.index("<h2>한국어</h2>"), page.notebook.name
        assert HANGUL.search(page.title), f"ko/{page.notebook.name}: title {page.title!r} is not the Korean one"
        assert page.section and HANGUL.search(page.topic), f"ko/{page.notebook.name}: no Korean row in README.ko.md"
    for name in (p.name for p in NOTEBOOKS):
        assert name in table, f"README.ko.md's notebook table lacks {name}: the index takes its section from there"


def test_build_converts_stored_outputs_without_running(build_html, tmp_path):
    notebook = REPO / "notebooks" / "00_setup.ipynb"
    before = notebook.read_bytes()
    pages = build_html.build([notebook], tmp_path, log=lambda m: None)
    page = (tmp_path / "00_setup.html").read_text()
    index = (tmp_path / "index.html").read_text()
    assert 'href="00_setup.html"' in index and pages[0].title in index
    assert "data:image/png;base64," in page, "the stored figure is not embedded"
    assert "sin(x): plots work" in page
    assert notebook.read_bytes() == before
    if (REPO / "results" / "RESULTS.md").exists():
        assert 'href="results.html"' in index and "<table>" in (tmp_path / "results.html").read_text()


def test_build_puts_the_korean_edition_in_its_folder(build_html, tmp_path):
    notebook = REPO / "notebooks" / "ko" / "00_setup.ipynb"
    pages = build_html.build([REPO / "notebooks" / "00_setup.ipynb", notebook], tmp_path, log=lambda m: None)
    assert (tmp_path / "00_setup.html").exists() and (tmp_path / "ko" / "00_setup.html").exists()
    page = (tmp_path / "ko" / "00_setup.html").read_text()
    assert HANGUL.search(page) and "sin(x): plots work" in page
    assert 'href="ko/00_setup.html"' in (tmp_path / "index.html").read_text() and pages[1].korean


# --- scripts/browser_test.py (the parts that need no browser) -------------------------------

@pytest.fixture(scope="module")
def browser_test():
    return load_script("browser_test")


def test_change_detection_tells_figures_from_readouts(browser_test):
    base = {0: {"text": "n = 5", "images": ["data:image/png;base64,AAA"]}}
    assert browser_test.difference(base, base) == ""
    assert browser_test.difference(base, {0: {"text": "n = 5", "images": ["data:image/png;base64,BBB"]}}) == "figure"
    assert browser_test.difference(base, {0: {"text": "n = 6", "images": ["data:image/png;base64,AAA"]}}) == "readout"
    error = {0: {"text": "Traceback (most recent call last)\nValueError: bad n", "images": []}}
    assert browser_test.new_traceback(base, error) == "ValueError: bad n"


def test_notebook_selection(browser_test):
    korean = REPO / "notebooks" / browser_test.KOREAN_NOTEBOOK
    assert korean.exists(), f"the browser test runs {browser_test.KOREAN_NOTEBOOK}: run make korean"
    assert browser_test.select_notebooks([]) == NOTEBOOKS + [korean]
    assert [p.name for p in browser_test.select_notebooks(["00"])] == ["00_setup.ipynb"]
    assert [p.name for p in browser_test.select_notebooks(["notebooks/00_setup.ipynb"])] == ["00_setup.ipynb"]
    assert browser_test.select_notebooks(["ko/00"]) == browser_test.select_notebooks(["notebooks/ko/00_setup.ipynb"]) == [korean]
    folder = REPO / "notebooks"
    assert [browser_test.relative_name(p, folder) for p in browser_test.select_notebooks(["00", "ko/00"])] == [
        "00_setup.ipynb", "ko/00_setup.ipynb"]
    assert browser_test.screenshot_stem("ko/00_setup.ipynb") == "ko-00_setup"
    with pytest.raises(SystemExit, match="no notebook"):
        browser_test.select_notebooks(["99_nothing"])
    with pytest.raises(SystemExit, match="no notebook"):
        browser_test.select_notebooks(["ko/99_nothing"])


def test_the_korean_notebook_fails_without_a_korean_font_or_hangul_glyphs(browser_test):
    rendered = {"font": "system-ui", "inked": True, "distinct": True}
    boxes = {"font": "system-ui", "inked": True, "distinct": False}
    texts = ["00 — 준비: 실행 환경 확인과 노트북 안내"]
    assert browser_test.hangul_problems(["/usr/share/fonts/NanumGothic.ttf"], texts, rendered) == []
    assert browser_test.hangul_problems(None, texts, rendered) == []  # no fc-list: the glyphs decide
    [problem] = browser_test.hangul_problems([], texts, rendered)
    assert "no Korean font" in problem and browser_test.KOREAN_FONT_PACKAGE in problem
    [problem] = browser_test.hangul_problems(["NanumGothic.ttf"], texts, boxes)
    assert "the same box" in problem and browser_test.KOREAN_FONT_PACKAGE in problem
    [problem] = browser_test.hangul_problems(["NanumGothic.ttf"], ["00 — Setup"], None)
    assert "no Hangul" in problem


def test_korean_fonts_reads_fc_list(browser_test, monkeypatch):
    import subprocess as sp

    monkeypatch.setattr(browser_test.shutil, "which", lambda name: "/usr/bin/fc-list")
    listing = lambda out: lambda *a, **k: sp.CompletedProcess(a, 0, stdout=out, stderr="")  # noqa: E731
    assert browser_test.korean_fonts(listing("/usr/share/fonts/truetype/nanum/NanumGothic.ttf: \n")) == [
        "/usr/share/fonts/truetype/nanum/NanumGothic.ttf:"]
    assert browser_test.korean_fonts(listing("")) == []
    monkeypatch.setattr(browser_test.shutil, "which", lambda name: None)
    assert browser_test.korean_fonts(listing("x")) is None


def test_voila_choice_prefers_a_slider_that_redraws_a_figure(browser_test):
    W, R = browser_test.WidgetResult, browser_test.NotebookResult
    text = R("00_setup.ipynb", widgets=[W(0, 5, ["n"], control="slider 5 -> 6", changed="readout")])
    figure = R("01_x.ipynb", widgets=[W(0, 3, ["K"], control="slider 5 -> 6", changed="figure")])
    assert browser_test.choose_voila_notebook([text, figure], None) == "01_x.ipynb"
    assert browser_test.choose_voila_notebook([text], None) == "00_setup.ipynb"
    assert browser_test.choose_voila_notebook([], "05_reptile") == "05_reptile.ipynb"


def test_browser_test_never_downloads_a_browser(browser_test):
    source = (REPO / "scripts" / "browser_test.py").read_text()
    assert "executable_path=CHROMIUM" in source
    assert "playwright install" not in source.replace("never", "")  # only mentioned to say it is not used
    assert browser_test.LAB_SETTINGS["@jupyterlab/docmanager-extension/plugin"] == {"autosave": False}


# --- make targets and CI ------------------------------------------------------------------------

def dry_run(target: str) -> str:
    run = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("target, command", [
    ("test-browser", "scripts/browser_test.py"),
    ("present", "voila notebooks"),
    ("html", "scripts/build_html.py"),
    ("results", "scripts/results.py"),
    ("reproduce", "-m lecture_utils.retrain"),
])
def test_make_targets(target, command):
    assert command in dry_run(target)


def test_ci_runs_the_browser_test_after_the_tests():
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make test" in lines and "make test-browser" in lines
    assert lines.index("make test") < lines.index("make test-browser")


def test_browser_extra_is_pinned():
    import tomllib

    from lecture_utils.versions import normalize, read_constraints

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {normalize(re.match(r"[A-Za-z0-9._-]+", req)[0]) for req in extras["browser"]}
    assert {"playwright", "voila"} <= names and names <= set(read_constraints()), (
        "the browser extra's packages need an exact pin in constraints.txt")

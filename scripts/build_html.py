#!/usr/bin/env python3
"""Static HTML of the executed notebooks, for a reader who only wants to look: build/html/.

    .venv/bin/python scripts/build_html.py                  # make html: every notebook, both editions + index.html
    .venv/bin/python scripts/build_html.py notebooks/00_setup.ipynb --out /tmp/html

Each notebook is converted with nbconvert's HTML exporter from its *stored* outputs (nothing is
re-executed, so this takes seconds and shows exactly what `make test` checked); figures are
embedded in the page; ``results/RESULTS.md`` becomes ``results.html``. The Korean edition
(``notebooks/ko/``) goes to ``ko/NAME.html``. ``index.html`` lists both editions, English first,
then 한국어: each notebook with its title (the Korean one's for the Korean edition), the section of the
lecture notes it teaches (from the notebook table of README.md, or of README.ko.md for the Korean
edition; else the heading's parenthesis) and its topic. Sliders need a live kernel: on these pages
they show their stored state only.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
KOREAN_DIR = NOTEBOOK_DIR / "ko"
DEFAULT_OUT = REPO / "build" / "html"
RESULTS = REPO / "results" / "RESULTS.md"
# "| `01_x.ipynb` | section | topic |"; README.ko.md links the name: "| [`01_x.ipynb`](notebooks/ko/01_x.ipynb) | ..."
README_ROW = re.compile(r"^\|\s*\[?`(?P<file>[^`]+\.ipynb)`(?:\]\([^)]*\))?\s*\|(?P<section>[^|]*)\|(?P<topic>[^|]*)\|\s*$")


@dataclass
class Page:
    notebook: Path
    title: str
    section: str
    topic: str

    @property
    def korean(self) -> bool:
        return is_korean(self.notebook)

    @property
    def href(self) -> str:
        return ("ko/" if self.korean else "") + self.notebook.with_suffix(".html").name


def readme_table(readme: Path = REPO / "README.md") -> dict[str, tuple[str, str]]:
    """{notebook file: (lecture section, topic)} from the README's table of notebooks."""
    rows = {}
    if readme.exists():
        for line in readme.read_text(encoding="utf-8").splitlines():
            match = README_ROW.match(line.strip())
            if match:
                rows[match["file"]] = (match["section"].strip(), match["topic"].strip())
    return rows


def title_of(notebook: Path) -> str:
    """The first level-1 heading of the notebook (the template puts it in the first cell)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def is_korean(notebook: Path) -> bool:
    """A notebook of the Korean edition (notebooks/ko/)."""
    return notebook.parent.name == "ko"


def describe(notebook: Path, table: dict[str, tuple[str, str]]) -> Page:
    title = title_of(notebook)
    section, topic = table.get(notebook.name, ("", ""))
    if not section or section in ("—", "-"):
        match = re.search(r"\(([^()]+)\)\s*$", title)  # "# 01 — The MAML algorithm (알고리즘 오버뷰)"
        section = match[1] if match else "—"
    return Page(notebook, title, section, topic)


def strip_markdown(text: str) -> str:
    """README cells use `code` spans; show them as <code> in the index."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text.replace("\\|", "|"), quote=False))


STYLE = """<style>
  body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border-bottom: 1px solid #ddd; padding: .5rem; text-align: left; vertical-align: top; }
  th { background: #f4f4f4; }
</style>"""


def results_html(markdown: str) -> str:
    """results/RESULTS.md as a page (mistune comes with nbconvert)."""
    import mistune

    body = mistune.create_markdown(plugins=["table"])(markdown)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>maml-lecture: results</title>\n'
            f'{STYLE}\n</head>\n<body>\n<p><a href="index.html">← the notebooks</a></p>\n{body}</body>\n</html>\n')


def table_rows(pages: list[Page]) -> str:
    return "\n".join(
        f'    <tr><td><a href="{html.escape(p.href)}">{html.escape(p.title)}</a><br><small><code>'
        f'{html.escape(("ko/" if p.korean else "") + p.notebook.name)}</code></small></td><td>{strip_markdown(p.section)}</td>'
        f"<td>{strip_markdown(p.topic)}</td></tr>" for p in pages)


def korean_section(pages: list[Page]) -> str:
    """The Korean edition's part of the index, in Korean."""
    if not pages:
        return ""
    return f"""<section lang="ko" id="ko">
<h2>한국어</h2>
<p>한국어판 노트북입니다(README.ko.md). 설명은 한국어이고, 코드 셀은 영어판과 같으므로 출력과 연습 문제 메시지는
영어입니다.</p>
<table>
  <thead><tr><th>노트북</th><th>강의 노트의 절</th><th>내용</th></tr></thead>
  <tbody>
{table_rows(pages)}
  </tbody>
</table>
</section>
"""


def index_html(pages: list[Page], results: bool = False) -> str:
    link = ('<p>Our trained models beside the papers\' numbers: <a href="results.html">results</a> '
            "(<code>make results</code>).</p>\n" if results else "")
    rows = table_rows([p for p in pages if not p.korean])
    korean = korean_section([p for p in pages if p.korean])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>maml-lecture: CS330 Lecture 4 notebooks</title>
{STYLE}
</head>
<body>
<h1>Lecture 4: optimization-based meta-learning (MAML)</h1>
{'<p lang="ko"><a href="#ko">한국어판</a> 노트북은 아래에 있습니다.</p>' if korean else ""}
<p>Stanford CS330 (Fall 2020). The notebooks below are shown with their stored outputs, as executed
by <code>make notebooks</code> and checked by <code>make test</code>. These pages are static: to move
the sliders, run the notebooks (<code>make lab</code>) or present them (<code>make present</code>).</p>
<h2>English</h2>
{link}<table>
  <thead><tr><th>Notebook</th><th>Lecture section (heading in the notes)</th><th>Topic</th></tr></thead>
  <tbody>
{rows}
  </tbody>
</table>
{korean}</body>
</html>
"""


def convert(notebook: Path, out: Path) -> Path:
    """nbconvert --to html of the stored outputs (no execution)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    target = out / ("ko" if is_korean(notebook) else "") / notebook.with_suffix(".html").name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


def build(notebooks: list[Path], out: Path, log=print) -> list[Page]:
    out.mkdir(parents=True, exist_ok=True)
    tables = {False: readme_table(), True: readme_table(REPO / "README.ko.md")}
    pages = []
    for notebook in notebooks:
        start = time.perf_counter()
        convert(notebook, out)
        pages.append(describe(notebook, tables[is_korean(notebook)]))
        log(f"  {'ko/' if is_korean(notebook) else ''}{notebook.name} -> {out / pages[-1].href} ({time.perf_counter() - start:.1f} s)")
    if RESULTS.exists():
        (out / "results.html").write_text(results_html(RESULTS.read_text(encoding="utf-8")), encoding="utf-8")
    (out / "index.html").write_text(index_html(pages, RESULTS.exists()), encoding="utf-8")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: notebooks/*.ipynb, then the Korean edition notebooks/ko/*.ipynb (not _*)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: build/html")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or [p for folder in (NOTEBOOK_DIR, KOREAN_DIR)
                                   for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith("_")]
    if not notebooks:
        parser.error("no notebooks found")
    start = time.perf_counter()
    pages = build(notebooks, args.out)
    print(f"wrote {args.out / 'index.html'} and {len(pages)} notebook page(s) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

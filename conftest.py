"""Project-wide pytest hooks.

1. A per-notebook time table at the end of a run with ``--nbval``: nbval makes one test item
   per cell, so the setup, call and teardown times of a notebook's items add up to its full
   run, kernel start included.
2. Tests marked ``cuda`` are skipped without a CUDA GPU. (Tests of real Omniglot find the
   archives themselves and skip, saying why, where they are absent.)
"""
from __future__ import annotations

from collections import defaultdict

import pytest

_notebooks: dict[str, dict] = defaultdict(lambda: {"cells": set(), "seconds": 0.0, "failed": set()})


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    row = _notebooks[path]
    row["cells"].add(report.nodeid)
    row["seconds"] += report.duration
    if report.failed:
        row["failed"].add(report.nodeid)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    if not _notebooks:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "notebook execution times")
    width = max(len("notebook"), *(len(p) for p in _notebooks))
    write(f"{'notebook':<{width}}  {'cells':>5}  {'seconds':>7}  result")
    for path in sorted(_notebooks):
        row = _notebooks[path]
        result = f"FAIL ({len(row['failed'])} failed)" if row["failed"] else "pass"
        write(f"{path:<{width}}  {len(row['cells']):>5}  {row['seconds']:>7.1f}  {result}")
    total = sum(row["seconds"] for row in _notebooks.values())
    write(f"{'total':<{width}}  {'':>5}  {total:>7.1f}")


def pytest_collection_modifyitems(config, items):
    if any(item.get_closest_marker("cuda") for item in items):
        import torch  # only when a cuda test exists: importing torch costs a second

        if not torch.cuda.is_available():
            skip = pytest.mark.skip(reason="needs a CUDA GPU")
            for item in items:
                if item.get_closest_marker("cuda"):
                    item.add_marker(skip)

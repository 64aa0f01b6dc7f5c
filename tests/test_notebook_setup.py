"""The one setup call at the top of every notebook: threads, seeds, the device line."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch

from lecture_utils.notebook_setup import DEVICE_LINE, THREADS_ENV, setup, threads_from_environment

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if not p.name.startswith("_"))


@pytest.mark.parametrize("environ, threads", [
    ({}, 1),                                              # nobody chose: one thread
    ({"OMP_NUM_THREADS": "4"}, None),                     # the user chose; torch follows it already
    ({THREADS_ENV: "3"}, 3),
    ({THREADS_ENV: "2", "OMP_NUM_THREADS": "4"}, 2),      # the lecture's own variable wins
    ({THREADS_ENV: " ", "OMP_NUM_THREADS": ""}, 1),       # empty values count as unset
])
def test_threads_from_environment(environ, threads):
    assert threads_from_environment(environ) == threads


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_thread_count_names_the_variable(value):
    with pytest.raises(ValueError, match=THREADS_ENV):
        threads_from_environment({THREADS_ENV: value})


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_setup_limits_threads_seeds_and_prints_one_line(monkeypatch, capsys, restore_threads):
    monkeypatch.setenv("MAML_LECTURE_DEVICE", "cpu")
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    device = setup(seed=3)
    first = torch.rand(3)
    assert device == torch.device("cpu")
    assert torch.get_num_threads() == 1
    assert capsys.readouterr().out.splitlines() == [f"{DEVICE_LINE} cpu (1 threads)"]

    setup(seed=3)
    assert torch.equal(torch.rand(3), first), "setup(seed) must seed torch"


def test_setup_leaves_threads_the_user_chose(monkeypatch, capsys, restore_threads):
    monkeypatch.setenv("MAML_LECTURE_DEVICE", "cpu")
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    setup()
    assert torch.get_num_threads() == 2


def test_device_line_is_sanitized_but_nothing_else():
    rules = re.findall(r"^regex: (.*)$\n^replace: (.*)$", (REPO / "nbval_sanitize.cfg").read_text(),
                       flags=re.MULTILINE)

    def sanitize(text):
        for regex, replace in rules:
            text = re.sub(regex, replace, text)
        return text

    laptop = f"{DEVICE_LINE} cpu (1 threads)\nSinusoidTasks(amplitude=(0.1, 5.0))\n"
    gpu = f"{DEVICE_LINE} cuda (NVIDIA H200)\nSinusoidTasks(amplitude=(0.1, 5.0))\n"
    assert sanitize(laptop) == sanitize(gpu)
    assert sanitize(laptop) != sanitize(laptop.replace("5.0", "4.0"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_setup_call(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    first = cells[0].source
    assert re.search(r"^device = setup\(seed=\d+", first, flags=re.MULTILINE), (
        f"the first code cell of {path.name} should call `device = setup(seed=0)` "
        f"(from lecture_utils.notebook_setup)")
    assert "set_num_threads" not in first and "get_device()" not in first, (
        f"{path.name}: setup() limits the threads and picks the device; remove the notebook's own lines")

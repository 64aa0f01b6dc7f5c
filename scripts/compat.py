#!/usr/bin/env python3
"""The compatibility run: the package and every notebook with another torch.

    make compat TORCH=2.15.0                  # the registry's newest
    make compat TORCH=2.0.1                   # the oldest supported
    make compat TORCH=2.0.1 COMPAT_ARGS=--lowest   # ... with every library at its oldest, too
    python3 scripts/compat.py --torch 2.15.0 --notebooks 01 05 --keep-venv

It builds a fresh virtual environment ``.venv-compat-<torch>``, installs that torch and the newest
libraries inside pyproject.toml's ranges (not constraints.txt: only the torch is fixed), then

1. runs the unit tests (``pytest tests``), and
2. runs every notebook top to bottom under ``pytest --nbval-lax``: every cell must run without an
   error, so every ``assert`` cell must hold, but stored outputs are not compared (printed digits
   and figures may differ between versions; ``make test`` compares them with the pinned set).

With ``--lowest`` every other runtime dependency is held at the lower bound of its range instead
(``numpy>=1.26`` installs numpy 1.26.0): the floors pyproject.toml claims, tested together.

It prints, and writes to ``build/compat/<torch>[-lowest].md``, a table of passes, failures and seconds per
test file and per notebook, with the installed versions. Notebooks run on the CPU with one torch
thread (``MAML_LECTURE_THREADS``, default 1: a busy 2-core machine slows several threads tenfold).

Only torch 2.13.0 has a CPU-only wheel; other releases pull about 3 GB of CUDA libraries, which
is why this is not part of .ci/run (docs/compatibility.md has the recorded runs). A site-wide pip
constraint (``PIP_CONSTRAINT`` or a pip.conf ``constraint``) is replaced for this install by one
that names only the torch asked for, so it cannot hold a library back. torch before 2.3 was built
against NumPy 1, so for those the run also constrains ``numpy<2``.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUMPY2_TORCH = (2, 3)  # the first torch built against NumPy 2


def release(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def torch_range(pyproject: Path = REPO / "pyproject.toml") -> tuple[str, str]:
    """(lowest, below) of pyproject's ``torch>=lowest,<below``."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"torch\s*[<>=!~]", d))
    low = re.search(r">=\s*([\d.]+)", spec)
    high = re.search(r"<\s*([\d.]+)", spec)
    if not (low and high):
        raise SystemExit(f"error: pyproject.toml's torch requirement {spec!r} is not of the form torch>=A,<B")
    return low[1], high[1]


def check_torch(version: str) -> str:
    """The version, if it is a release inside pyproject's range; else a SystemExit saying why."""
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version or ""):
        raise SystemExit(f"error: TORCH={version!r} is not a release number; run e.g. make compat TORCH=2.15.0")
    low, high = torch_range()
    pad = lambda v: release(v) + (0,) * (3 - len(release(v)))  # noqa: E731
    if not pad(low) <= pad(version) < pad(high):
        raise SystemExit(f"error: torch {version} is outside pyproject.toml's range >={low},<{high}; "
                         f"choose a release in it (the oldest supported is {low})")
    return version


def lower_bounds(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """``name==floor`` for every runtime dependency but torch: the lower ends of the ranges."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        name = re.match(r"[A-Za-z0-9._-]+", dep)[0]
        low = re.search(r">=\s*([\w.]+)", dep)
        if name != "torch" and low:
            out.append(f"{name}=={low[1]}")
    return out


def constraints_for(torch: str, lowest: bool = False) -> list[str]:
    lines = [f"torch=={torch}"]
    if lowest:
        lines += lower_bounds()
    elif release(torch)[:2] < NUMPY2_TORCH:
        lines.append("numpy<2  # torch before 2.3 was built against NumPy 1")
    return lines


def sh(args: list, log, env=None, timeout=None) -> int:
    """Run, teeing nothing: stdout and stderr go to the log file; the exit code comes back."""
    log.write(f"\n$ {' '.join(map(str, args))}\n")
    log.flush()
    return subprocess.run([str(a) for a in args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                          timeout=timeout).returncode


def junit_rows(xml_path: Path, key) -> dict[str, dict]:
    """{group: {"passed", "failed", "skipped", "seconds", "failures": [...]}} from a JUnit XML file;
    ``key(classname, file)`` names the group of each test case."""
    rows: dict[str, dict] = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0,
                                                  "failures": []})
    if not xml_path.exists():
        return {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        row = rows[key(case.get("classname", ""), case.get("file", ""))]
        row["seconds"] += float(case.get("time") or 0)
        problem = case.find("failure")
        problem = problem if problem is not None else case.find("error")
        if problem is not None:
            row["failed"] += 1
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            row["failures"].append(f"{case.get('name')}: {message[0][:300] if message else ''}")
        elif case.find("skipped") is not None:
            row["skipped"] += 1
        else:
            row["passed"] += 1
    return dict(rows)


def table(rows: dict[str, dict], what: str) -> list[str]:
    out = [f"| {what} | passed | failed | skipped | seconds |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in sorted(rows):
        r = rows[name]
        out.append(f"| `{name}` | {r['passed']} | {r['failed']} | {r['skipped']} | {r['seconds']:.1f} |")
    total = {k: sum(r[k] for r in rows.values()) for k in ("passed", "failed", "skipped", "seconds")}
    out.append(f"| total | {total['passed']} | {total['failed']} | {total['skipped']} | {total['seconds']:.1f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", required=True, help="the torch release, e.g. 2.15.0")
    parser.add_argument("--python", default=sys.executable, help="the Python that creates the venv")
    parser.add_argument("--notebooks", nargs="*", default=None,
                        help="notebook names or stems (default: every notebook not starting with _)")
    parser.add_argument("--keep-venv", action="store_true", help="reuse .venv-compat-<torch> if it exists")
    parser.add_argument("--lowest", action="store_true",
                        help="hold every other runtime dependency at the lower bound of its range")
    parser.add_argument("--cell-timeout", type=int, default=1800, help="seconds per notebook cell")
    args = parser.parse_args(argv)

    torch = check_torch(args.torch)
    every = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if not p.name.startswith("_"))
    if args.notebooks:
        notebooks = [p for p in every if any(p.stem == n.removesuffix(".ipynb").split("/")[-1]
                                             or p.stem.split("_")[0] == n for n in args.notebooks)]
        if not notebooks:
            raise SystemExit(f"error: no notebook matches {args.notebooks} (have: {[p.stem for p in every]})")
    else:
        notebooks = every
    label = f"{torch}-lowest" if args.lowest else torch
    venv = REPO / f".venv-compat-{label}"
    out = REPO / "build" / "compat"
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / f"{label}.log"
    python = venv / "bin" / "python"
    start = time.monotonic()
    report = [f"# Compatibility run: torch {torch}" + (", every library at its floor" if args.lowest else ""), ""]
    with open(log_path, "w") as log:
        print(f"compat {label}: venv {venv.name}, log {log_path.relative_to(REPO)}", flush=True)
        # 1. a fresh venv with that torch and the newest libraries inside the ranges
        t = time.monotonic()
        if venv.exists() and not args.keep_venv:
            shutil.rmtree(venv)
        if not python.exists() and sh([args.python, "-m", "venv", venv], log):
            raise SystemExit(f"error: {args.python} -m venv failed (see {log_path})")
        constraints = venv / "compat-constraints.txt"
        constraints.write_text("\n".join(constraints_for(torch, args.lowest)) + "\n")
        env = {**os.environ, "PIP_CONSTRAINT": str(constraints), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if sh([python, "-m", "pip", "install", f"torch=={torch}", "-e", ".[test]"], log, env=env):
            print(f"FAIL: the install failed; the end of {log_path}:", flush=True)
            print("\n".join(log_path.read_text().splitlines()[-20:]))
            return 1
        install_s = time.monotonic() - t
        code = ("import importlib.metadata as m, sys, torch; print(sys.version.split()[0], torch.__version__, "
                "*(m.version(n) for n in ('numpy', 'matplotlib', 'pillow', 'ipywidgets', 'ipykernel', "
                "'jupyterlab', 'tqdm', 'pytest', 'nbval', 'nbconvert')))")
        versions = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=REPO).stdout.split()
        names = ["python", "torch", "numpy", "matplotlib", "pillow", "ipywidgets", "ipykernel", "jupyterlab",
                 "tqdm", "pytest", "nbval", "nbconvert"]
        report += ["Installed: " + ", ".join(f"{n} {v}" for n, v in zip(names, versions)) + ".",
                   f"Install: {install_s:.0f} s (constraints: {'; '.join(constraints_for(torch, args.lowest))}).", ""]
        print(report[-3], flush=True)

        # 2. the unit tests
        run_env = {**os.environ, "MAML_LECTURE_DEVICE": "cpu",
                   "MAML_LECTURE_THREADS": os.environ.get("MAML_LECTURE_THREADS", "1")}
        run_env.pop("MAML_LECTURE_STRICT_PINS", None)
        t = time.monotonic()
        unit_xml = out / f"{label}-unit.xml"
        unit_rc = sh([python, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", f"--junitxml={unit_xml}"],
                     log, env=run_env)
        unit_s = time.monotonic() - t
        unit = junit_rows(unit_xml, lambda cls, f: cls.split(".")[1] + ".py" if "." in cls else cls)
        print(f"unit tests: exit {unit_rc} in {unit_s:.0f} s", flush=True)

        # 3. every notebook, asserts holding, outputs not compared
        nb_rows: dict[str, dict] = {}
        for nb in notebooks:
            t = time.monotonic()
            xml = out / f"{label}-{nb.stem}.xml"
            rc = sh([python, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
                     "--nbval-cell-timeout", str(args.cell_timeout), f"--junitxml={xml}",
                     nb.relative_to(REPO)], log, env=run_env)
            row = junit_rows(xml, lambda cls, f: nb.name).get(nb.name) or {
                "passed": 0, "failed": 1, "skipped": 0, "seconds": 0.0, "failures": [f"pytest exit {rc}"]}
            row["seconds"] = time.monotonic() - t  # kernel start included
            nb_rows[nb.name] = row
            print(f"  {nb.name}: {'pass' if not row['failed'] else 'FAIL'} in {row['seconds']:.0f} s", flush=True)

    ok = unit_rc == 0 and not any(r["failed"] for r in nb_rows.values())
    report += [f"Unit tests (`pytest tests`): exit code {unit_rc}, {unit_s:.0f} s.", ""]
    report += table(unit, "test file") + [""]
    report += [f"Notebooks (`pytest --nbval-lax`, one cell = one test; seconds include the kernel start, "
               f"MAML_LECTURE_THREADS={run_env['MAML_LECTURE_THREADS']}):", ""]
    report += table(nb_rows, "notebook") + [""]
    failures = [f"- `{name}` {f}" for rows in (unit, nb_rows) for name, r in sorted(rows.items())
                for f in r["failures"]]
    report += (["Failures:", ""] + failures if failures else ["No failures."]) + [""]
    report += [f"Result: {'PASS' if ok else 'FAIL'}; whole run {time.monotonic() - start:.0f} s "
               f"(log: build/compat/{label}.log)."]
    (out / f"{label}.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Run the notebooks on a CUDA GPU and print one row per notebook: device, seconds, pass/fail.

    .venv/bin/python scripts/run_notebooks_gpu.py                 # every notebook
    .venv/bin/python scripts/run_notebooks_gpu.py notebooks/05_reptile.ipynb
    .venv/bin/python scripts/run_notebooks_gpu.py --lax           # through nbval --nbval-lax

A notebook passes when every cell runs without an error. The stored outputs come from the CPU
and GPU kernels differ in the last digits, so outputs are not compared strictly here (that is
`make test`, on the CPU); `--lax` runs nbval in lax mode, which compares only the cells marked
`# NBVAL_CHECK_OUTPUT`. First the GPU must pass lecture_utils.device's second-order MAML probe
(its meta-gradient agrees with the CPU's); when it fails nothing runs, unless MAML_LECTURE_PROBE=0
says to run unchecked. The notebooks are never executed in place: copies are executed in a
temporary folder made next to notebooks/, so that relative paths such as ../checkpoints
resolve as they do for the originals; it is removed afterwards unless --keep is given.
CPU-only machines (CI included) do not run this script.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"


def format_table(rows: list[tuple[str, str, float, str]]) -> str:
    """rows: (notebook, device, seconds, result) -> an aligned text table with a total line."""
    w_nb = max([len("notebook")] + [len(r[0]) for r in rows])
    w_dev = max([len("device")] + [len(r[1]) for r in rows])
    lines = [f"{'notebook':<{w_nb}}  {'device':<{w_dev}}  {'seconds':>7}  result",
             "-" * (w_nb + w_dev + 19)]
    lines += [f"{nb:<{w_nb}}  {dev:<{w_dev}}  {sec:>7.1f}  {result}" for nb, dev, sec, result in rows]
    lines.append(f"{'total':<{w_nb}}  {'':<{w_dev}}  {sum(r[2] for r in rows):>7.1f}")
    return "\n".join(lines)


def run_with_nbclient(copy: Path, timeout: int) -> str:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=timeout, record_timing=False,
                            resources={"metadata": {"path": str(copy.parent)}})
    try:
        client.execute()
        return "pass"
    except CellExecutionError as err:
        return f"FAIL: {err.ename}"
    except Exception as err:  # dead kernel, timeout, ...
        return f"FAIL: {type(err).__name__}"
    finally:
        nbformat.write(nb, copy)  # the executed copy, for --keep


def run_with_nbval_lax(copy: Path, timeout: int) -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
           "--nbval-current-env", f"--nbval-sanitize-with={REPO / 'nbval_sanitize.cfg'}",
           "--nbval-cell-timeout", str(timeout), copy.name]
    code = subprocess.run(cmd, cwd=copy.parent).returncode
    return "pass" if code == 0 else f"FAIL (pytest exit code {code})"


def probe_passes() -> bool:
    """Run the probe every notebook's get_device() runs, once here, and print its result."""
    sys.path.insert(0, str(REPO))  # this checkout's lecture_utils, as the notebooks import it
    from lecture_utils.device import DEVICE_ENV, PROBE_ENV, parse_device
    from lecture_utils.probe import probe_device

    target = parse_device(os.environ[DEVICE_ENV], f"${DEVICE_ENV}")
    if target.type == "cpu" or os.environ.get(PROBE_ENV) == "0":
        print(f"second-order MAML probe: skipped ({DEVICE_ENV}={target}, {PROBE_ENV}={os.environ.get(PROBE_ENV, '')})")
        return True
    start = time.perf_counter()
    reason = probe_device(target)
    seconds = time.perf_counter() - start
    if reason is None:
        print(f"second-order MAML probe on {target}: pass ({seconds:.2f} s, CUDA start-up included)")
        return True
    print(f"second-order MAML probe on {target}: FAIL: {reason}\nThe notebooks would refuse this device; "
          f"{PROBE_ENV}=0 runs them on it unchecked.", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--lax", action="store_true", help="run through nbval --nbval-lax")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--keep", action="store_true", help="keep the executed copies")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU visible (torch.cuda.is_available() is False), so there is nothing to run.\n"
              "This script is for GPU machines; on a CPU run the notebooks with `make test`.",
              file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0)
    os.environ.setdefault("MAML_LECTURE_DEVICE", "cuda")  # the kernels inherit it
    if not probe_passes():
        return 1

    notebooks = [p.resolve() for p in args.notebooks] or sorted(
        p for p in NOTEBOOK_DIR.glob("*.ipynb") if not p.name.startswith("_"))
    workdir = Path(tempfile.mkdtemp(prefix=".gpu-run-", dir=REPO))
    rows = []
    try:
        shutil.copytree(NOTEBOOK_DIR, workdir, dirs_exist_ok=True)  # helper files beside the notebooks
        for path in notebooks:
            copy = workdir / path.name
            shutil.copy(path, copy)
            print(f"running {path.name} on {device} ...", flush=True)
            start = time.perf_counter()
            result = (run_with_nbval_lax if args.lax else run_with_nbclient)(copy, args.timeout)
            rows.append((path.name, device, time.perf_counter() - start, result))
    finally:
        if args.keep:
            print(f"executed copies kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(rows))
    return 0 if all(r[3] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

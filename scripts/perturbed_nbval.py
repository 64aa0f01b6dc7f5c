"""Strict nbval with every float weight nudged by 2-4 float32 ulps: `make test-perturbed`.

    python scripts/perturbed_nbval.py [pytest arguments: the notebooks and the nbval options]

Other CPUs (AMD and Intel, ARM laptops) round the last bits of the same computation
differently, and no environment variable reproduces another CPU on this one. So this run
changes the last bits on purpose: scripts/perturb_startup.py, installed as an IPython startup
file in a temporary IPYTHONDIR that the nbval kernel inherits, multiplies every fresh layer
parameter and every loaded checkpoint tensor by 1 + 2e-7 (``MAML_LECTURE_NUDGE`` changes the
amount). A stored output that still matches holds on other machines too; one that changes
prints more digits than its computation can promise (CONTRIBUTING.md, "An output design
that holds across machines").

Before the notebooks run, a kernel started the same way proves that the nudge is active
(a fresh Linear, Conv2d and BatchStatNorm2d and a loaded state dict each differ from the
unperturbed values by a few ulps); otherwise the run stops, since it would prove nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STARTUP = Path(__file__).resolve().with_name("perturb_startup.py")
NUDGE_ENV = "MAML_LECTURE_NUDGE"

# Run in the kernel (nudged) and in this process (not nudged); the two must differ slightly.
PROBE = """
import json
import torch
from torch import nn
from lecture_utils.models import BatchStatNorm2d
torch.manual_seed(0)
_probe = {"linear": nn.Linear(3, 2).weight, "conv2d": nn.Conv2d(1, 2, 3).weight,
          "batchstatnorm2d": BatchStatNorm2d(2).weight}
_m = nn.Linear(2, 2)
_m.load_state_dict({"weight": torch.full((2, 2), 0.3), "bias": torch.full((2,), -1.7)})
_probe["loaded"] = _m.weight
print(json.dumps({k: v.detach().flatten().tolist() for k, v in _probe.items()}))
del _probe, _m
"""


def ipython_dir(root: Path) -> Path:
    """Make ``root`` an IPYTHONDIR whose default profile runs the perturbation at start-up."""
    startup = root / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    shutil.copy(STARTUP, startup / "00-nudge-weights.py")
    return root


def probe_values(env: dict | None = None, timeout: float = 120) -> dict[str, list[float]]:
    """The probe's values: in a kernel started like nbval's with ``env`` (None: in this process)."""
    if env is None:
        namespace: dict = {}
        from contextlib import redirect_stdout
        from io import StringIO

        out = StringIO()
        with redirect_stdout(out):
            exec(PROBE, namespace)
        return json.loads(out.getvalue())

    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, start_new_kernel

    km, kc = start_new_kernel(startup_timeout=timeout, kernel_name=CURRENT_ENV_KERNEL_NAME,
                              env=env, cwd=str(REPO))
    printed, errors = [], []

    def collect(msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            printed.append(content["text"])
        elif kind == "error":
            errors.append(f"{content['ename']}: {content['evalue']}")

    try:
        kc.execute_interactive(PROBE, timeout=timeout, output_hook=collect)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    if errors:
        raise RuntimeError(f"the probe failed in the kernel: {errors[0]}")
    return json.loads("".join(printed))


def nudge_problems(nudged: dict, plain: dict, nudge: float) -> list[str]:
    """What is wrong with the nudged probe values: unchanged, or changed by more than 2 nudges."""
    problems = []
    for name, reference in plain.items():
        for got, want in zip(nudged[name], reference):
            if got == want and want != 0.0:
                problems.append(f"{name}: {got!r} is not nudged")
                break
            if abs(got - want) > 2 * abs(nudge * want):
                problems.append(f"{name}: {got!r} differs from {want!r} by more than a nudge")
                break
    return problems


def main(argv: list[str]) -> int:
    nudge = float(os.environ.get(NUDGE_ENV, "2e-7"))
    with tempfile.TemporaryDirectory(prefix="ipython-nudged-") as root:
        env = {**os.environ, "IPYTHONDIR": str(ipython_dir(Path(root))), NUDGE_ENV: repr(nudge)}
        problems = nudge_problems(probe_values(env), probe_values(), nudge)
        if problems:
            print("error: the weights are not nudged in the kernel, so this run would prove nothing:\n  "
                  + "\n  ".join(problems), file=sys.stderr)
            return 2
        print(f"Every float weight is nudged by the factor 1 + {nudge:g} (IPython startup file in "
              f"IPYTHONDIR={root}); the stored outputs must still match.", flush=True)
        return subprocess.call([sys.executable, "-m", "pytest", *argv], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

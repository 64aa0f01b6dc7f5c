"""`make test-perturbed` really nudges every float weight, once, and nothing else.

The run (scripts/perturbed_nbval.py) installs scripts/perturb_startup.py as an IPython startup
file; if the nudge silently did nothing, the run would pass without proving anything.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
STARTUP = REPO / "scripts" / "perturb_startup.py"
FACTOR = 1 + 2e-7

perturbed_nbval = load_script("perturbed_nbval")


def build():
    """Modules of every kind the notebooks use, and two the startup file must also handle."""
    from lecture_utils.models import BatchStatNorm2d, SineMLP

    class Own(nn.Module):  # a notebook's module with its own parameter and a torch layer inside
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.full((3,), 0.7))
            self.layer = nn.Linear(2, 2)

    class ResetAgain(nn.Linear):  # a subclass whose reset calls the parent's: nudged once
        def reset_parameters(self):
            super().reset_parameters()

    torch.manual_seed(0)
    modules = {"sine": SineMLP(4), "conv": nn.Conv2d(1, 2, 3), "bstat": BatchStatNorm2d(2),
               "bn": nn.BatchNorm2d(2), "ln": nn.LayerNorm(3), "own": Own(), "again": ResetAgain(2, 2),
               "attn": nn.MultiheadAttention(4, 2),
               "encoder": nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 2,
                                                enable_nested_tensor=False)}
    modules["relinit"] = nn.Linear(2, 3)
    modules["relinit"].reset_parameters()  # a second reset: the new values are nudged once
    loaded = nn.Linear(2, 2)
    state = {"weight": torch.full((2, 2), 0.3), "bias": torch.full((2,), -1.7)}
    loaded.load_state_dict(state)
    modules["loaded"] = loaded
    weights = {f"{m}.{n}": p.detach().flatten().tolist()
               for m, module in modules.items() for n, p in module.named_parameters()}
    weights["state_dict_after_load"] = state["weight"].flatten().tolist()  # the caller's dict is untouched
    return weights


CHILD = f"""
import json, sys
namespace = {{}}
exec(compile(open({str(STARTUP)!r}).read(), "startup", "exec"), namespace)
leaked = sorted(set(namespace) - {{"__builtins__"}})
sys.path.insert(0, {str(REPO / "tests")!r})
import test_perturbation
print(json.dumps({{"leaked": leaked, "weights": test_perturbation.build()}}))
"""


@pytest.fixture(scope="module")
def nudged_and_plain():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                         timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    child = json.loads(run.stdout.splitlines()[-1])
    return child, build()


def test_startup_file_adds_no_names_to_the_notebook(nudged_and_plain):
    child, _ = nudged_and_plain
    assert child["leaked"] == []


def test_every_parameter_is_nudged_exactly_once(nudged_and_plain):
    child, plain = nudged_and_plain
    assert child["weights"].keys() == plain.keys()
    for name, values in plain.items():
        if name == "state_dict_after_load":
            continue
        expected = torch.tensor(values).mul(FACTOR).tolist()  # float32 times the factor, as in the kernel
        assert child["weights"][name] == expected, name
    assert child["weights"]["state_dict_after_load"] == plain["state_dict_after_load"]


def test_kernel_started_like_nbval_is_nudged_by_a_few_ulps(tmp_path):
    """The real route: a kernel with IPYTHONDIR set, started the way nbval starts it."""
    env = {**os.environ, "IPYTHONDIR": str(perturbed_nbval.ipython_dir(tmp_path)),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    nudged, plain = perturbed_nbval.probe_values(env), perturbed_nbval.probe_values()
    assert perturbed_nbval.nudge_problems(nudged, plain, 2e-7) == []
    for name in plain:
        for got, want in zip(nudged[name], plain[name]):
            ulp = torch.finfo(torch.float32).eps * 2.0 ** torch.tensor(abs(want)).log2().floor().item()
            assert ulp <= abs(got - want) <= 4 * ulp, (name, got, want)  # 2e-7 relative: 2-4 ulps


def test_unnudged_values_are_reported():
    plain = {"linear": [0.25, -0.5, 0.0]}
    assert perturbed_nbval.nudge_problems(plain, plain, 2e-7) == ["linear: 0.25 is not nudged"]
    far = {"linear": [0.26, -0.5, 0.0]}
    assert "more than a nudge" in perturbed_nbval.nudge_problems(far, plain, 2e-7)[0]


def test_make_target_and_ci_run_it():
    makefile = (REPO / "Makefile").read_text()
    rule = re.search(r"^test-perturbed:.*\n\t(.*)$", makefile, flags=re.MULTILINE)
    assert rule, "the Makefile has no test-perturbed target"
    assert "scripts/perturbed_nbval.py $(NOTEBOOKS) $(NBVAL_ARGS)" in rule.group(1)
    assert "$(TEST_ENV)" in rule.group(1)
    assert re.search(r"^\.PHONY:.*\btest-perturbed\b", makefile, flags=re.MULTILINE)
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test-perturbed$", ci, flags=re.MULTILINE), ".ci/run does not run make test-perturbed"
    assert ci.index("\nmake test\n") < ci.index("\nmake test-perturbed\n")

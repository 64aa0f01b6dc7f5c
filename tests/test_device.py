"""The device choice cannot silently break second-order MAML, and bad device names get a clear
error naming where they came from.

The CPU stands in for an accelerator: the tests pretend Apple MPS is present and route the
probe's device-side computation (``_candidate_meta_gradient``) to the CPU, where they break it.
"""
import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F

from lecture_utils import device as dev
from lecture_utils import probe
from lecture_utils.device import DEVICE_ENV, PROBE_ENV, describe_device, get_device
from lecture_utils.probe import probe_device
from tests.scripts import load_script


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch):
    """No cached probe, no earlier fallback, no device variables, and no CUDA."""
    monkeypatch.setattr(probe, "_probe_results", {})
    monkeypatch.setattr(dev, "_fallback", None)
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.delenv(PROBE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def stand_in(monkeypatch):
    """Pretend MPS is present; its side of the probe runs on the CPU through ``stand_in.kernel``,
    which a test may replace. ``stand_in.calls`` counts the device-side computations."""
    class StandIn:
        calls = 0

        @staticmethod
        def kernel(model, batch, maml):
            return probe._meta_gradient(model, batch, maml, torch.device("cpu"))

    def on_stand_in(model, batch, maml, device):
        assert device == torch.device("mps")
        StandIn.calls += 1
        return StandIn.kernel(model, batch, maml)

    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    monkeypatch.setattr(probe, "_candidate_meta_gradient", on_stand_in)
    return StandIn


def missing_double_backward(monkeypatch):
    def pool(*args, **kwargs):
        raise NotImplementedError("derivative for aten::max_pool2d_with_indices_backward is not implemented")
    return lambda model, batch, maml: _with(monkeypatch, F, "max_pool2d", pool,
                                            lambda: probe._meta_gradient(model, batch, maml, torch.device("cpu")))


def _with(monkeypatch, owner, name, value, compute):
    with monkeypatch.context() as m:
        m.setattr(owner, name, value)
        return compute()


def scaled(factor, param="head.bias"):
    """A kernel whose gradient for one parameter is off by ``factor``."""
    def kernel(model, batch, maml):
        grads = probe._meta_gradient(model, batch, maml, torch.device("cpu"))
        return {n: g * factor if n == param else g for n, g in grads.items()}
    return kernel


def first_order(model, batch, maml):
    """A device that silently drops the second-order term of the meta-gradient."""
    return probe._meta_gradient(model, batch, dataclasses.replace(maml, first_order=True), torch.device("cpu"))


# --- the probe -------------------------------------------------------------------------------

def test_probe_passes_on_the_cpu_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    assert probe._run_probe(torch.device("cpu")) is None
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_healthy_accelerator_is_used(stand_in, capsys):
    assert get_device() == torch.device("mps")
    assert stand_in.calls == 2  # Conv4 and the MLP
    assert capsys.readouterr().err == ""


def test_fallback_when_a_kernel_raises(stand_in, monkeypatch, capsys):
    stand_in.kernel = missing_double_backward(monkeypatch)
    assert get_device() == torch.device("cpu")
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "not mps: second-order MAML fails there (NotImplementedError: derivative for aten::max_pool2d" in err
    assert f"{DEVICE_ENV}=mps {PROBE_ENV}=0" in err  # how to force it anyway


@pytest.mark.parametrize("kernel", [first_order, scaled(1.01), scaled(float("nan"))],
                         ids=["first_order", "1%_off", "nan"])
def test_fallback_when_the_gradient_is_wrong(stand_in, kernel, capsys):
    stand_in.kernel = kernel
    assert get_device() == torch.device("cpu")
    assert "gradient differs from the CPU's" in capsys.readouterr().err


def test_float32_noise_is_within_tolerance(stand_in):
    stand_in.kernel = scaled(1 + 1e-5)
    assert get_device() == torch.device("mps")


def test_the_probe_runs_once_per_session(stand_in, monkeypatch, capsys):
    stand_in.kernel = missing_double_backward(monkeypatch)
    assert [get_device() for _ in range(3)] == [torch.device("cpu")] * 3
    assert stand_in.calls == 1  # raised at the first model; never re-run
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # said once
    assert probe_device("mps").startswith("second-order MAML fails there")


def test_describe_device_says_why_after_a_fallback(stand_in, monkeypatch):
    assert re.fullmatch(r"cpu \(\d+ threads\)", describe_device(torch.device("cpu")))  # the stored format
    stand_in.kernel = missing_double_backward(monkeypatch)
    line = describe_device()
    assert re.fullmatch(r"cpu \(\d+ threads\); mps not used: second-order MAML fails there \(.*\)", line)
    assert line.split(" ")[0] == "cpu" and "\n" not in line


@pytest.mark.parametrize("how", ["env", "argument", "cli"])
def test_an_explicit_request_that_fails_the_probe_raises(stand_in, monkeypatch, how):
    stand_in.kernel = first_order
    if how == "env":
        monkeypatch.setenv(DEVICE_ENV, "mps")
        call, named = get_device, r"\$MAML_LECTURE_DEVICE 'mps'"
    elif how == "argument":
        call, named = lambda: get_device("mps"), r"device 'mps' \(given to get_device\(\), e.g. by a --device option\)"
    else:
        call, named = lambda: get_device("mps", source="--device"), "--device 'mps'"
    with pytest.raises(RuntimeError, match=f"{named}.* asks for mps, but its second-order MAML gradient "
                                           f"differs.*'cpu' instead.*{PROBE_ENV}=0"):
        call()


def test_probe_off_uses_the_device_unchecked(stand_in, monkeypatch):
    monkeypatch.setenv(PROBE_ENV, "0")
    stand_in.kernel = first_order
    assert get_device() == torch.device("mps") and get_device("mps") == torch.device("mps")
    assert stand_in.calls == 0
    monkeypatch.setenv(PROBE_ENV, "no")
    with pytest.raises(ValueError, match=r"\$MAML_LECTURE_PROBE='no'.*1 .*or 0"):
        get_device()


def test_the_cpu_is_never_probed(stand_in, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert get_device() == torch.device("cpu") and get_device("cpu") == torch.device("cpu")
    assert stand_in.calls == 0 and probe._probe_results == {}


@pytest.mark.cuda
def test_the_probe_passes_on_a_real_gpu(monkeypatch):
    monkeypatch.undo()  # the real torch.cuda.is_available
    assert probe_device("cuda") is None


# --- names and where they came from -----------------------------------------------------------

@pytest.mark.parametrize("name", ["nonsense", "meta", "xla", "cuda:x", "gpu", "cuda:-1"])
def test_unknown_names_are_refused_naming_their_source(monkeypatch, name):
    monkeypatch.setenv(DEVICE_ENV, name)
    with pytest.raises(ValueError, match=rf"\$MAML_LECTURE_DEVICE '{re.escape(name)}' is not a device.*"
                                         r"cpu, cuda, cuda:N \(e.g. cuda:1\), mps"):
        get_device()
    with pytest.raises(ValueError, match=rf"^--device '{re.escape(name)}' is not a device"):
        get_device(name, source="--device")  # the argument wins over the variable
    with pytest.raises(ValueError, match=rf"^device '{re.escape(name)}' \(given to get_device\(\), e.g. by a --"):
        get_device(name)


@pytest.mark.parametrize("name", ["CPU", " cpu ", "Cpu"])
def test_upper_case_is_accepted(monkeypatch, name):
    monkeypatch.setenv(DEVICE_ENV, name)
    assert get_device() == torch.device("cpu")
    assert get_device(name) == torch.device("cpu")


def test_missing_cuda_names_where_the_request_came_from(monkeypatch):
    with pytest.raises(RuntimeError, match="^--device 'cuda' asks for CUDA, but no CUDA GPU is visible") as err:
        get_device("cuda", source="--device")
    assert DEVICE_ENV not in str(err.value)  # it is unset: do not blame it
    with pytest.raises(RuntimeError, match=r"^device 'cuda' \(given to get_device\(\), e.g. by a --device option\) asks"):
        get_device("cuda")
    monkeypatch.setenv(DEVICE_ENV, "cuda:1")
    with pytest.raises(RuntimeError, match=r"^\$MAML_LECTURE_DEVICE 'cuda:1' asks for CUDA"):
        get_device()


def test_missing_cuda_index_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"asks for cuda:3, but only 1 CUDA GPU\(s\) are visible"):
        get_device("cuda:3")


def test_missing_mps_is_named(monkeypatch):
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"^\$MAML_LECTURE_DEVICE 'mps' asks for Apple MPS, which is not"):
        monkeypatch.setenv(DEVICE_ENV, "mps")
        get_device()


# --- scripts/run_notebooks_gpu.py uses the same probe -----------------------------------------

def test_gpu_runner_stops_when_the_probe_fails(stand_in, monkeypatch, capsys):
    script = load_script("run_notebooks_gpu")
    monkeypatch.setenv(DEVICE_ENV, "mps")
    assert script.probe_passes()
    assert "probe on mps: pass" in capsys.readouterr().out
    monkeypatch.setattr(probe, "_probe_results", {})
    stand_in.kernel = first_order
    assert not script.probe_passes()
    assert "probe on mps: FAIL: its second-order MAML gradient differs" in capsys.readouterr().err


def test_gpu_check_script_exits_clearly_without_a_gpu(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "No CUDA GPU visible" in run.stdout
    assert "No CUDA GPU visible" in (tmp_path / "summary.txt").read_text()

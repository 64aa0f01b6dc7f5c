"""Every exercise of every notebook, run the way a student runs it (CONTRIBUTING.md, "Exercises and
self-checks"): the folded solution passes its check, the unsolved cell and wrong answers do not.

The exercises are read from the notebooks themselves: each "### Exercise N" markdown cell, the code
cell after it (the student's), and the markdown cell after that with the solution folded in
<details>. The solution is the whole cell, solved; it exists nowhere else. A cell runs in a namespace
made of the notebook's exercise import cell (the first code cell of "## Exercises") and, where an
exercise names objects of the notebook (a trained model, a table), small stand-ins built below:
the checks compute their expected values from the objects passed in, so any stand-in will do.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))  # _template.ipynb included
SOLUTION = re.compile(r"<details><summary>Solution</summary>\s*```python\n(.*?)```", re.S)


def _source(cell) -> str:
    return "".join(cell["source"])


def read_exercises(path: Path):
    """(import cell source, [(number, student code, solution code)]) of one notebook."""
    cells = json.loads(path.read_text())["cells"]
    starts = [i for i, c in enumerate(cells)
              if c["cell_type"] == "markdown" and re.search(r"^## Exercises", _source(c), re.M)]
    assert len(starts) == 1, f"{path.name}: one '## Exercises' section"
    i = starts[0]
    assert cells[i + 1]["cell_type"] == "code", f"{path.name}: the exercise import cell follows '## Exercises'"
    imports, exercises = _source(cells[i + 1]), []
    for j in range(i + 2, len(cells)):
        match = re.match(r"### Exercise (\d+):", _source(cells[j]))
        if cells[j]["cell_type"] != "markdown" or not match:
            continue
        student, folded = cells[j + 1], cells[j + 2]
        where = f"{path.name}, exercise {match.group(1)}"
        assert student["cell_type"] == "code", f"{where}: the student's code cell follows the exercise"
        solved = SOLUTION.search(_source(folded))
        assert folded["cell_type"] == "markdown" and solved, f"{where}: a folded ```python solution follows"
        after = cells[j + 3] if j + 3 < len(cells) else None
        assert after is None or after["cell_type"] == "markdown", (
            f"{where}: no code cell after the folded solution (Run All would overwrite the student's answer)")
        exercises.append((int(match.group(1)), _source(student), solved.group(1)))
    numbers = [n for n, _, _ in exercises]
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: exercises numbered 1, 2, 3, ..."
    return imports, exercises


# --- stand-ins for the notebook objects that exercises name ------------------------------------------

def _episodes(n_tasks: int, n_way: int = 5, k_query: int = 3, seed: int = 0):
    from lecture_utils.tasks import TaskBatch
    g = torch.Generator().manual_seed(seed)
    images = lambda n: torch.rand(n_tasks, n, 1, 28, 28, generator=g)
    labels = lambda k: torch.arange(n_way).repeat(k).expand(n_tasks, -1).clone()
    return TaskBatch(images(n_way), labels(1), images(n_way * k_query), labels(k_query))


def _notebook_01(ns):
    """The notebook's own pseudo-code cells (cheap: definitions only), with its constants."""
    import torch.nn.functional as F

    from lecture_utils.device import seed_everything
    from lecture_utils.models import SineMLP, forward_with, parameters_of
    from lecture_utils.sinusoid import SinusoidTasks
    ns.update(torch=torch, F=F, SineMLP=SineMLP, forward_with=forward_with, parameters_of=parameters_of,
              seed_everything=seed_everything, device=torch.device("cpu"), family=SinusoidTasks(),
              ALPHA=0.01, BETA_SGD=0.003, K=10, Q=10)
    cells = json.loads((ROOT / "notebooks" / "01_maml_algorithm.ipynb").read_text())["cells"]
    for name in ("def sinusoid_stream", "def pseudo_code_1", "def pseudo_code_2"):
        (cell,) = [c for c in cells if c["cell_type"] == "code" and name in _source(c)]
        exec(_source(cell), ns)


def _notebook_03(ns):
    from lecture_utils.exercises.nb03 import _saved_mib
    from lecture_utils.models import Conv4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Conv4(5, hidden=8)
    batch = _episodes(1)
    steps = [1, 2]
    accuracies = 100 * torch.rand(60, generator=torch.Generator().manual_seed(3)).clamp(0.4, 1.0)
    ns.update(cost_model=model, cost_batch=batch, STEPS=steps, scores={"chars20_maml": accuracies},
              saved={"second_order": [_saved_mib(model, batch, s) for s in steps]})


def _notebook_04(ns):
    from lecture_utils.maml import MAML
    from lecture_utils.models import Conv4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Conv4(5, hidden=8)
    shears = [0.0, 0.6, 1.2]
    g = torch.Generator().manual_seed(4)
    learners = {"MAML": None, "black box": None}
    acc = {(name, s, 1.0): (0.9 - 0.2 * s + 0.05 * torch.rand(40, generator=g)).clamp(0, 1)
           for name in learners for s in shears}
    ns.update(episode=_episodes(1), held_out=[_episodes(8, seed=1)], maml_net=model,
              maml_batched=MAML("classification", inner_lr=0.4, inner_steps=1),
              SHEARS=shears, learners=learners, acc=acc)


STAND_INS = {"01_maml_algorithm": _notebook_01, "03_cost_and_approximations": _notebook_03,
             "04_blackbox_vs_maml": _notebook_04}


def namespace(stem: str) -> dict:
    ns: dict = {"__name__": "__exercise__"}
    if stem in STAND_INS:
        STAND_INS[stem](ns)
    exec(read_exercises(ROOT / "notebooks" / f"{stem}.ipynb")[0], ns)
    return ns


def run(stem: str, code: str, ns: dict | None = None) -> str:
    """Run one cell's code; return the single verdict line it prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), torch.random.fork_rng(devices=[]):
        exec(code, namespace(stem) if ns is None else ns)
    verdicts = [line for line in out.getvalue().splitlines() if line.startswith(("Correct:", "Not yet:"))]
    assert len(verdicts) == 1, f"a check prints exactly one verdict line, got:\n{out.getvalue()}"
    return verdicts[0]


# --- wrong answers: each replaces the student's cell; every one must print "Not yet" ---------------
# At least two per exercise, one of them a number copied from the prose of the notebook; where the
# exercise asks for a function, also answers typed from the notebook's numbers, answers that call the
# package function the exercise asks the student to write, and answers computed another way than asked.

_META_GRADIENT_FN = (  # notebook 02, exercise 3, with {fix} standing for the line of the silent bug
    "def meta_gradient_fn(model, x_spt, y_spt, x_qry, y_qry, alpha):\n"
    "    theta = list(model.parameters())\n"
    "    spt_loss = F.mse_loss(model(x_spt), y_spt)\n"
    "    {fix}\n"
    "    phi = {{n: {start} - {alpha} * g for (n, p), g in zip(model.named_parameters(), grads)}}\n"
    "    qry_loss = F.mse_loss(forward_with(model, phi, x_qry), y_qry)\n"
    "    return torch.autograd.grad(qry_loss, theta)\n"
    "check_meta_gradient_function(meta_gradient_fn)")
_SECOND_ORDER = "grads = torch.autograd.grad(spt_loss, theta, create_graph=True)"
_PSEUDO_CODE = ("tasks_20 = sinusoid_stream(20, K, seed=3)\nseed_everything(0)\nmodel_a = SineMLP()\n"
                "pseudo_code_1(model_a, tasks_20, alpha=ALPHA, beta=BETA_SGD)\nseed_everything(0)\nmodel_b = SineMLP()\n")
_SHEAR_MEANS = "shear_means = {name: [acc[name, s, 1.0].mean().item() for s in SHEARS] for name in learners}\n"
_SHEARED = "first_20 = TaskBatch(*(t[:20] for t in held_out[0]))\nsheared_batches = [distort_episodes(first_20, 1.2, 1.0)]\n"
_MEASURED_STEPS = "check_more_steps({}, maml_net, maml_batched, sheared_batches, steps=5)"


def _fn(signature: str, body: str, check: str) -> str:
    """A student's cell: ``def <signature>:`` with ``body`` (lines joined by newlines), then the check call."""
    lines = "\n".join("    " + line for line in body.split("\n"))
    return f"def {signature}:\n{lines}\n\n\n{check}"


_DRAW = "draw_twice(seed)", "check_same_draw(draw_twice)"
_MOVE = "to_device(tensor, device)", "check_to_device(to_device)"
_INNER = "inner_step(w, x_spt, y_spt, alpha)", "check_inner_step(inner_step)"
_META = "meta_gradient(w, x_spt, y_spt, x_qry, y_qry, alpha)", "check_meta_gradient(meta_gradient)"
_SECOND = "second_derivative(f, x)", "check_second_derivative(second_derivative)"
_LINE = "predict_mib(steps, mib, n_steps)", "check_saved_mib_prediction(predict_mib, cost_model, cost_batch, steps=20)"
_HEAD = "head_fraction(n_way, hidden)", "check_head_fraction(head_fraction)"
_TASKS = "tasks_needed(per_task, half_width)", 'check_tasks_needed(tasks_needed, scores["chars20_maml"] / 100, half_width=0.01)'
_DISTORT = "distort_task(episode, shear, scale)", "check_distorted_episode(distort_task)"
_KEPT = "kept_share(accuracies, n_way)", _SHEAR_MEANS + "check_headroom(kept_share, shear_means)"
_FLIP = "phase_flip_curves(x, amplitude, phase)", "check_phase_flip(phase_flip_curves)"
_COEF = "one_step_coefficient(model, batch, inner_lr, inner_steps=1)", "check_one_step_coefficient(one_step_coefficient)"
_SPT_LOSS = "loss, _ = MAML('regression', inner_steps=0).objective(model, batch._replace(x_qry=batch.x_spt, y_qry=batch.y_spt))"

WRONG = {
    ("00_setup", 1): [
        _fn(_DRAW[0], "seed_everything(seed)\nreturn torch.rand(2), torch.rand(2)", _DRAW[1]),
        _fn(_DRAW[0], "seed_everything(123)\na = torch.rand(2)\nseed_everything(123)\nreturn a, torch.rand(2)",
            _DRAW[1]),  # the seed of the prose
        "check_same_draw([0.2961, 0.5166])",
        _fn(_DRAW[0], "seed_everything(seed)\na = torch.rand(2)\nreturn a, a", _DRAW[1]),  # the same draw twice
        _fn(_DRAW[0], "seed_everything(seed)\na = torch.rand(2)\nreturn a, a.clone()", _DRAW[1]),
        _fn(_DRAW[0], "seed_everything(seed)\na = torch.rand(2)\nseed_everything(seed)\nb = torch.rand(2)\nreturn a, a",
            _DRAW[1]),
        _fn(_DRAW[0], "seed_everything(seed)\nx = torch.rand(4)\nreturn x[:2], x[:2].clone()", _DRAW[1]),
    ],
    ("00_setup", 2): [
        _fn(_MOVE[0], "return tensor", _MOVE[1]),  # moved = x on the CPU
        _fn(_MOVE[0], "return tensor.to(get_device())", _MOVE[1]),
        "check_to_device([0.0, 1.0, 2.0, 3.0])",  # a list: Not yet, not an AttributeError
        _fn(_MOVE[0], "return tensor.tolist()", _MOVE[1]),
        "x = torch.arange(4.0)\ncheck_to_device(x)",
        _fn(_MOVE[0], "return tensor.to(device, torch.float64)", _MOVE[1]),  # also casts to float64
        _fn(_MOVE[0], "return tensor.to(device).float()", _MOVE[1]),
        _fn(_MOVE[0], "return tensor.detach().to(device)", _MOVE[1]),
        _fn(_MOVE[0], "return tensor.to(device).flatten()", _MOVE[1]),
    ],
    ("00_setup", 3): [
        'check_map("01", "02", "05")',  # "02", the example of the prose
        "check_map(1, 3, 5)",
        'check_map("1", "3", "5")',
        'check_map("01", "05", "03")',
    ],
    ("01_maml_algorithm", 1): [
        _fn(_INNER[0], "return 1 + 0.5 * w", _INNER[1]),  # typed from the printed numbers
        _fn(_INNER[0], "return torch.tensor(1.0)", _INNER[1]),
        "check_inner_step(1.0)",
        _fn(_INNER[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).mean(), w)\nreturn w - alpha * g",
            _INNER[1]),  # no create_graph: dphi/dw = 1
        _fn(_INNER[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).mean(), w, create_graph=True)\n"
                       "return w + alpha * g", _INNER[1]),
        _fn(_INNER[0], "return w - alpha * (2 * x_spt * (w * x_spt - y_spt)).mean()", _INNER[1]),  # no autograd
        _fn(_INNER[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).mean(), w, create_graph=True)\n"
                       "return w - 0.1 * g", _INNER[1]),  # alpha of the prose
        _fn(_INNER[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).sum(), w, create_graph=True)\n"
                       "return w - alpha * g", _INNER[1]),
    ],
    ("01_maml_algorithm", 2): [
        _fn(_META[0], "return -9", _META[1]),
        _fn(_META[0], "return torch.tensor(-18.0)", _META[1]),  # dL/dphi, from the prose
        _fn(_META[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).mean(), w)\nphi = w - alpha * g\n"
                      "return torch.autograd.grad(((phi * x_qry - y_qry) ** 2).mean(), w)", _META[1]),
        "check_meta_gradient(-9.0)",
        _fn(_META[0], "return 1 / 0", _META[1]),
        _fn(_META[0], "phi = w - alpha * (2 * x_spt * (w * x_spt - y_spt)).mean()\n"
                      "return (2 * x_qry * (phi * x_qry - y_qry)).mean() * (1 - alpha * (2 * x_spt ** 2).mean())",
            _META[1]),  # the closed form, no autograd
        _fn(_META[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).mean(), w, create_graph=True)\n"
                      "phi = w - 0.1 * g\nreturn torch.autograd.grad(((phi * x_qry - y_qry) ** 2).mean(), w)",
            _META[1]),  # alpha of the prose
        _fn(_META[0], "(g,) = torch.autograd.grad(((w * x_spt - y_spt) ** 2).mean(), w, create_graph=True)\n"
                      "phi = w - alpha * g\nreturn torch.autograd.grad(((phi * x_qry - y_qry) ** 2).sum(), w)",
            _META[1]),
    ],
    ("01_maml_algorithm", 3): [
        _PSEUDO_CODE + "pseudo_code_2(model_b, tasks_20, alpha=ALPHA, beta=0.001, optimizer=torch.optim.SGD)\n"  # beta of the prose
        "check_same_parameters(model_a, model_b)",
        "tasks_20 = sinusoid_stream(20, K, seed=3)\nseed_everything(0)\nmodel_a = SineMLP()\n"
        "pseudo_code_1(model_a, tasks_20, alpha=ALPHA, beta=BETA_SGD)\ncheck_same_parameters(model_a, model_a)",
        _PSEUDO_CODE + "model_b.load_state_dict(model_a.state_dict())\ncheck_same_parameters(model_a, model_b)",
        _PSEUDO_CODE + "import copy\nmodel_b = copy.deepcopy(model_a)\ncheck_same_parameters(model_a, model_b)",
        _PSEUDO_CODE + "with torch.no_grad():\n    for p_b, p_a in zip(model_b.parameters(), model_a.parameters()):\n"
        "        p_b.copy_(p_a)\ncheck_same_parameters(model_a, model_b)",
        _PSEUDO_CODE + "pseudo_code_2(model_b, tasks_20, alpha=ALPHA, beta=BETA_SGD)\n"  # its default optimiser, Adam
        "check_same_parameters(model_a, model_b)",
        _PSEUDO_CODE + "pseudo_code_2(model_b, tasks_20, alpha=ALPHA, beta=BETA_SGD,\n"
        "              optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9))\n"
        "check_same_parameters(model_a, model_b)",
    ],
    ("02_create_graph", 1): [
        _fn(_SECOND[0], "return 48", _SECOND[1]),
        _fn(_SECOND[0], "return torch.autograd.grad(f(x), x)[0]", _SECOND[1]),
        _fn(_SECOND[0], "(first,) = torch.autograd.grad(f(x), x)\nreturn torch.autograd.grad(first, x)[0]", _SECOND[1]),
        "check_second_derivative(torch.tensor(48.0))",
        _fn(_SECOND[0], "first = lambda z: torch.autograd.grad(f(z), x, create_graph=True)[0]\n"
                        "return (first(x + 1e-4) - first(x - 1e-4)) / 2e-4", _SECOND[1]),  # a finite difference
        _fn(_SECOND[0], "return torch.autograd.functional.hessian(f, x)", _SECOND[1]),
        _fn(_SECOND[0], "from torch.func import jacfwd, jacrev\nreturn jacfwd(jacrev(f))(x)", _SECOND[1]),
    ],
    ("02_create_graph", 2): [
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n(2 * y).backward()\n"
        "check_backward_twice(x, y, passes)",
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n(y + y).backward()\n"
        "check_backward_twice(x, y, passes)",
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n"
        "y.backward(torch.tensor(2.))\ncheck_backward_twice(x, y, passes)",
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\ny.backward()\n"
        "y = x ** 3\ny.backward()\ncheck_backward_twice(x, y, passes)",  # two graphs, no retain_graph
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\ny.backward()\n"
        "(x ** 3).backward()\ncheck_backward_twice(x, y, passes)",
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\nx.grad = torch.tensor(24.)\n"
        "check_backward_twice(x, y, passes)",  # 24, from the prose
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n"
        "for _ in range(3):\n    y.backward(retain_graph=True)\ncheck_backward_twice(x, y, passes)",
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n"
        "torch.autograd.grad(y, x, retain_graph=True)\ntorch.autograd.grad(y, x)\nx.grad = torch.tensor(24.)\n"
        "check_backward_twice(x, y, passes)",  # two passes, none stored into x.grad
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n"
        "y.backward(retain_graph=True)\ntorch.autograd.grad(y, x)\nx.grad *= 2\ncheck_backward_twice(x, y, passes)",
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n"
        "(g1,) = torch.autograd.grad(y, x, retain_graph=True)\n(g2,) = torch.autograd.grad(y, x)\nx.grad = g1 + g2\n"
        "check_backward_twice(x, y, passes)",
    ],
    ("02_create_graph", 3): [
        "def meta_gradient_fn(model, *args):\n    return [torch.zeros_like(p) for p in model.parameters()]\n"
        "check_meta_gradient_function(meta_gradient_fn)",
        "check_meta_gradient_function(lambda *args: 1 / 0)",
        "check_meta_gradient_function(1e-7)",  # the agreement of the prose
        "from lecture_utils.maml import MAML\nfrom lecture_utils.tasks import TaskBatch\n"
        "def meta_gradient_fn(model, x_spt, y_spt, x_qry, y_qry, alpha):\n"
        "    batch = TaskBatch(x_spt[None], y_spt[None], x_qry[None], y_qry[None])\n"
        "    loss, _ = MAML('regression', inner_lr=alpha).objective(model, batch)\n"
        "    return torch.autograd.grad(loss, list(model.parameters()))\n"
        "check_meta_gradient_function(meta_gradient_fn)",  # the package's meta-loss instead of the fix
        "from lecture_utils.maml import adapt\nfrom lecture_utils.models import parameters_of\n"
        "def meta_gradient_fn(model, x_spt, y_spt, x_qry, y_qry, alpha):\n"
        "    phi = adapt(model, parameters_of(model), x_spt, y_spt, loss_fn=F.mse_loss, inner_lr=alpha)\n"
        "    qry_loss = F.mse_loss(forward_with(model, phi, x_qry), y_qry)\n"
        "    return torch.autograd.grad(qry_loss, list(model.parameters()))\n"
        "check_meta_gradient_function(meta_gradient_fn)",
        _META_GRADIENT_FN.format(fix=_SECOND_ORDER, start="p", alpha="0.1"),  # the alpha of the first problem
        _META_GRADIENT_FN.format(fix=_SECOND_ORDER, start="p.detach()", alpha="alpha"),
        _META_GRADIENT_FN.format(fix="grads = torch.autograd.grad(spt_loss, theta, retain_graph=True)", start="p",
                                 alpha="alpha"),
    ],
    ("03_cost_and_approximations", 1): [
        "from lecture_utils.exercises.nb03 import _saved_mib\n"
        + _fn(_LINE[0], "return _saved_mib(cost_model, cost_batch, n_steps)", _LINE[1]),  # measured, not predicted
        "from lecture_utils.maml import MAML\nfrom lecture_utils.cost import graph_saved_bytes\n"
        + _fn(_LINE[0], "loss, _ = MAML('classification', inner_lr=0.4, inner_steps=n_steps).objective(cost_model, cost_batch)\n"
                        "return graph_saved_bytes(loss) / 2**20", _LINE[1]),
        _fn(_LINE[0], "return 9.12 + 3.75 * 19", _LINE[1]),  # from the printed table
        "check_saved_mib_prediction(9.12 + 3.75 * 19, cost_model, cost_batch, steps=20)",
        "check_saved_mib_prediction(None, cost_model, cost_batch, steps=20)",
        _fn(_LINE[0], "per_step = (mib[-1] - mib[0]) / (steps[-1] - steps[0])\nreturn mib[0] + per_step * n_steps",
            _LINE[1]),  # off by the first step
        _fn(_LINE[0], "return mib[-1] / steps[-1] * n_steps", _LINE[1]),  # no intercept
    ],
    ("03_cost_and_approximations", 2): [
        "check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n] - alpha * grads[n] for n in theta})",
        "check_first_order_adapt(lambda theta, grads, alpha: {n: (theta[n] - alpha * grads[n]).detach() for n in theta})",
        "check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n] - 0.4 * grads[n].detach() for n in theta})",
        "check_first_order_adapt(lambda theta, grads: None)",
        "check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n] - 0.01 * grads[n].detach() for n in theta})",
        "check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n] + alpha * grads[n].detach() for n in theta})",
        "check_first_order_adapt(lambda theta, grads, alpha: {n: theta[n].detach() - alpha * grads[n] for n in theta})",
    ],
    ("03_cost_and_approximations", 3): [
        "check_head_fraction(0.0058)",  # the fraction the notebook prints, typed
        _fn(_HEAD[0], "return 0.0058", _HEAD[1]),
        _fn(_HEAD[0], "counts = {n: p.numel() for n, p in parameters_of(Conv4(n_way, hidden=hidden)).items()}\n"
                      "head = sum(c for n, c in counts.items() if is_head(n))\nreturn head / (sum(counts.values()) - head)",
            _HEAD[1]),
        _fn(_HEAD[0], "counts = {n: p.numel() for n, p in parameters_of(Conv4(n_way, hidden=hidden)).items()}\n"
                      "return 100 * sum(c for n, c in counts.items() if is_head(n)) / sum(counts.values())", _HEAD[1]),
        _fn(_HEAD[0], "names = list(parameters_of(Conv4(n_way, hidden=hidden)))\n"
                      "return sum(is_head(n) for n in names) / len(names)", _HEAD[1]),  # tensors, not elements
        _fn(_HEAD[0], "counts = {n: p.numel() for n, p in parameters_of(Conv4(5, hidden=32)).items()}\n"
                      "return sum(c for n, c in counts.items() if is_head(n)) / sum(counts.values())", _HEAD[1]),
        'check_head_fraction("a lot")',
    ],
    ("03_cost_and_approximations", 4): [
        _fn(_TASKS[0], "return 1.96 * per_task.std().item() / half_width", _TASKS[1]),  # not squared
        _fn(_TASKS[0], "return 1.96", _TASKS[1]),
        'per_task = scores["chars20_maml"] / 100\ncheck_tasks_needed((1.96 * per_task.std().item() / 0.01) ** 2, per_task)',
        _fn(_TASKS[0], "return (2 * per_task.std().item() / half_width) ** 2", _TASKS[1]),  # z = 2, not 1.96
        _fn(_TASKS[0], "return (1.96 * per_task.var().item() / half_width) ** 2", _TASKS[1]),
        _fn(_TASKS[0], "return (1.96 * per_task.std().item() / 0.01) ** 2", _TASKS[1]),  # the half-width of the prose
    ],
    ("04_blackbox_vs_maml", 1): [
        _fn(_DISTORT[0], "return distort_episodes(episode, shear, scale)", _DISTORT[1]),  # the package's function
        _fn(_DISTORT[0], "return TaskBatch(distort(episode.x_spt, shear=shear, scale=scale), episode.y_spt,\n"
                         "                 episode.x_qry, episode.y_qry)", _DISTORT[1]),
        "check_distorted_episode(episode)",
        _fn(_DISTORT[0], "return TaskBatch(distort(episode.x_spt, shear=scale, scale=shear), episode.y_spt,\n"
                         "                 distort(episode.x_qry, shear=scale, scale=shear), episode.y_qry)", _DISTORT[1]),
        _fn(_DISTORT[0], "return TaskBatch(distort(episode.x_spt, shear=0.6, scale=0.7), episode.y_spt,\n"
                         "                 distort(episode.x_qry, shear=0.6, scale=0.7), episode.y_qry)", _DISTORT[1]),
        _fn(_DISTORT[0], "return TaskBatch(distort(episode.x_spt, shear=shear, scale=scale), episode.y_spt.flip(-1),\n"
                         "                 distort(episode.x_qry, shear=shear, scale=scale), episode.y_qry.flip(-1))",
            _DISTORT[1]),
    ],
    ("04_blackbox_vs_maml", 2): [
        _fn(_KEPT[0], "return 0.75", _KEPT[1]),  # "roughly a quarter" lost, from the prose
        _fn(_KEPT[0], "return accuracies[-1] / accuracies[0]", _KEPT[1]),
        _SHEAR_MEANS + 'check_headroom(0.69, 0.68, shear_means)',
        _fn(_KEPT[0], "return (accuracies[-1] - 0.2) / (accuracies[0] - 0.2)", _KEPT[1]),  # 5-way chance, typed
        _fn(_KEPT[0], "return 1 - (accuracies[-1] - 1 / n_way) / (accuracies[0] - 1 / n_way)", _KEPT[1]),
        _fn(_KEPT[0], "return (accuracies[1] - 1 / n_way) / (accuracies[0] - 1 / n_way)", _KEPT[1]),
    ],
    ("04_blackbox_vs_maml", 3): [
        _SHEARED + "_, accs = evaluate(maml_net, maml_batched, sheared_batches)\n"
        + _MEASURED_STEPS.format("accs.mean().item()"),
        _SHEARED + _MEASURED_STEPS.format("0.08"),  # "4 to 8 points"
        _SHEARED + _MEASURED_STEPS.format("torch.ones(3)"),
        _SHEARED + "losses, _ = evaluate(maml_net, maml_batched, sheared_batches, steps=5)\n"
        + _MEASURED_STEPS.format("losses.mean().item()"),
        _SHEARED + "_, accs = evaluate(maml_net, maml_batched, sheared_batches, steps=5)\n"
        + _MEASURED_STEPS.format("100 * accs.mean().item()"),
    ],
    ("04_blackbox_vs_maml", 4): [
        _fn(_FLIP[0], "y_phase_shifted = sinusoid(x, amplitude, phase + torch.pi)\n"
                      "return y_phase_shifted, y_phase_shifted.clone()", _FLIP[1]),  # one curve copied
        _fn(_FLIP[0], "y_negative_amplitude = sinusoid(x, -amplitude, phase)\n"
                      "return y_negative_amplitude, y_negative_amplitude", _FLIP[1]),
        _fn(_FLIP[0], "return sinusoid(x, amplitude, phase), sinusoid(x, -amplitude, phase)", _FLIP[1]),
        _fn(_FLIP[0], "return sinusoid(x, 2.0, 0.5 + torch.pi), sinusoid(x, -2.0, 0.5)", _FLIP[1]),  # the prose's
        _fn(_FLIP[0], "return sinusoid(x, amplitude, phase + torch.pi), sinusoid(x, 5.0, phase)", _FLIP[1]),
        _fn(_FLIP[0], "return sinusoid(x, amplitude, phase) + torch.pi, sinusoid(x, -amplitude, phase)", _FLIP[1]),
        _fn(_FLIP[0], "return torch.zeros(3), torch.zeros(3)", _FLIP[1]),
    ],
    ("05_reptile", 1): [
        "check_reptile_update(lambda theta, phis, epsilon: {n: theta[n] + torch.stack([p[n] - theta[n] for p in phis]).mean(0) for n in theta})",
        "check_reptile_update(lambda theta, phis, epsilon: {n: theta[n] + 0.5 * torch.stack([theta[n] - p[n] for p in phis]).mean(0) for n in theta})",
        "check_reptile_update(lambda theta, phis, epsilon: 1 / 0)",
        "check_reptile_update(lambda theta, phis, epsilon: {n: theta[n] + 0.3 * torch.stack([p[n] - theta[n] for p in phis]).mean(0) for n in theta})",
        "check_reptile_update(lambda theta, phis, epsilon: {n: theta[n] + epsilon * (phis[0][n] - theta[n]) for n in theta})",
        "check_reptile_update(lambda theta, phis, epsilon: {n: theta[n] + epsilon * torch.stack([p[n] for p in phis]).mean(0) for n in theta})",
        "from lecture_utils.exercises.nb05 import _reference_update\ncheck_reptile_update(_reference_update)",
    ],
    ("05_reptile", 2): [
        _fn(_COEF[0], "return -0.01", _COEF[1]),  # -alpha, from the prose
        _fn(_COEF[0], "return -inner_lr", _COEF[1]),  # known, not measured
        _fn(_COEF[0], "return inner_lr", _COEF[1]),
        "check_one_step_coefficient(-0.01)",
        _fn(_COEF[0], f"{_SPT_LOSS}\nloss.backward()\nreturn -inner_lr", _COEF[1]),  # a gradient, then the known value
        _fn(_COEF[0], f"{_SPT_LOSS}\nloss.backward()\nreturn -inner_lr * inner_steps", _COEF[1]),
        _fn("one_step_coefficient(model, batch, inner_lr)",
            "d = Reptile('regression', inner_lr=inner_lr, inner_steps=1).direction(model, batch)\n"
            f"{_SPT_LOSS}\ng = torch.autograd.grad(loss, list(model.parameters()))\n"
            "d, g = torch.cat([v.flatten() for v in d.values()]), torch.cat([v.flatten() for v in g])\n"
            "return (d @ g / (g @ g)).item()", _COEF[1]),  # no inner_steps
        _fn(_COEF[0], "d = Reptile('regression', inner_lr=inner_lr, inner_steps=inner_steps).direction(model, batch)\n"
                      "loss, _ = MAML('regression', inner_steps=0).objective(model, batch)\n"
                      "g = torch.autograd.grad(loss, list(model.parameters()))\n"
                      "d, g = torch.cat([v.flatten() for v in d.values()]), torch.cat([v.flatten() for v in g])\n"
                      "return (d @ g / (g @ g)).item()", _COEF[1]),  # the gradient of the query loss
    ],
    ("05_reptile", 3): [
        "check_k_step_coefficients(2, 1)",  # k = 2, from the prose
        "check_k_step_coefficients(3, 6)",
        "check_k_step_coefficients(3, 2)",
        "check_k_step_coefficients(1, 3)",
    ],
    ("05_reptile", 4): [
        "check_examples_seen(lambda n_way, k_shot, k_query: (5, 20))",  # the numbers of the prose
        "check_examples_seen(lambda n_way, k_shot, k_query: (n_way * k_shot, n_way * k_query))",
        "check_examples_seen(lambda n_way, k_shot, k_query: (n_way * (k_shot + k_query),) * 2)",
        "check_examples_seen(lambda n_way, k_shot, k_query: (n_way, n_way + n_way * k_query))",  # right for 1-shot only
        "check_examples_seen(lambda n_way, k_shot, k_query: (n_way * k_shot, n_way * k_query + k_shot))",
    ],
    ("06_further_remedies", 1): [
        "def ridge_head(features, targets, lam):\n    n, d = features.shape\n"
        "    return torch.linalg.solve(features.T @ features + lam * torch.eye(d, dtype=features.dtype), features.T @ targets)\n"
        "check_ridge_head(ridge_head)",  # the d×d form: the same numbers
        "def ridge_head(features, targets, lam):\n    return features.T @ torch.linalg.solve(features @ features.T, targets)\n"
        "check_ridge_head(ridge_head)",  # no ridge
        "check_ridge_head(lambda features, targets, lam: torch.zeros(features.shape[1], targets.shape[1]))",
        "from lecture_utils.ridge_head import ridge_weights\ncheck_ridge_head(ridge_weights)",  # the package's
        "def ridge_head(features, targets, lam):\n    n = features.shape[0]\n"
        "    return features.T @ torch.linalg.solve(features @ features.T + torch.eye(n, dtype=features.dtype), targets)\n"
        "check_ridge_head(ridge_head)",  # λ = 1 typed in
        "def ridge_head(features, targets, lam):\n    n, d = features.shape\n"
        "    return torch.inverse(features.T @ features + lam * torch.eye(d, dtype=features.dtype)) @ features.T @ targets\n"
        "check_ridge_head(ridge_head)",  # d×d by torch.inverse
    ],
    ("06_further_remedies", 2): [
        "def cg(matvec, b, steps):\n    n = len(b)\n"
        "    a = torch.stack([matvec(e) for e in torch.eye(n, dtype=b.dtype)], 1)\n"
        "    return torch.linalg.solve(a, b)\ncheck_conjugate_gradient(cg)",  # exact, not CG
        "def cg(matvec, b, steps):\n    x = torch.zeros_like(b)\n    for _ in range(steps):\n"
        "        r = b - matvec(x)\n        x = x + (r @ r) / (r @ matvec(r)) * r\n    return x\n"
        "check_conjugate_gradient(cg)",  # steepest descent
        "from lecture_utils.imaml import conjugate_gradient\ncheck_conjugate_gradient(conjugate_gradient)",
        "def cg(matvec, b, steps):\n    x, r = torch.zeros_like(b), b.clone()\n    p, rr = r.clone(), r @ r\n"
        "    for _ in range(steps):\n        step = rr / (p @ matvec(p))\n        x = x + step * p\n"
        "        r = r - step * matvec(p)\n        rr_new = r @ r\n        p = r + (rr_new / rr) * p\n        rr = rr_new\n"
        "    return x\ncheck_conjugate_gradient(cg)",  # right numbers, two products per step
        "def cg(matvec, b, steps):\n    return b\ncheck_conjugate_gradient(cg)",
    ],
    ("06_further_remedies", 3): [
        "check_implicit_meta_gradient(lambda hessian, query_grad, lam: query_grad)",  # first order
        "check_implicit_meta_gradient(lambda hessian, query_grad, lam: torch.linalg.solve("
        "hessian + lam * torch.eye(len(query_grad), dtype=hessian.dtype), query_grad))",  # off by λ
        "check_implicit_meta_gradient(lambda hessian, query_grad, lam: torch.linalg.solve("
        "torch.eye(len(query_grad), dtype=hessian.dtype) + lam * hessian, query_grad))",
        "check_implicit_meta_gradient(lambda hessian, query_grad, lam: query_grad - hessian @ query_grad / lam)",  # one term
        "check_implicit_meta_gradient(lambda hessian, query_grad, lam: None)",
    ],
    ("_template", 1): [
        "def mse_grad(w, x, y):\n    return -10.0\ncheck_mse_grad(mse_grad)",  # the number of the prose
        "def mse_grad(w, x, y):\n    return (2 * x * (w * x - y)).mean()\ncheck_mse_grad(mse_grad)",  # no autograd
        "def mse_grad(w, x, y):\n    return torch.autograd.grad(((y - w * x) ** 2).mean(), w)[0] * -1\ncheck_mse_grad(mse_grad)",
        "def mse_grad(w, x, y):\n    return torch.autograd.grad(((w * x - y) ** 2).sum(), w)[0]\ncheck_mse_grad(mse_grad)",
        "def mse_grad(w, x, y):\n    loss = lambda v: ((v * x - y) ** 2).mean()\n"
        "    return (loss(w.detach() + 1e-3) - loss(w.detach() - 1e-3)) / 2e-3\ncheck_mse_grad(mse_grad)",
    ],
}

# --- right answers besides the folded solution: other ways to the same answer ------------------------
RIGHT = {
    ("00_setup", 1): [
        _fn(_DRAW[0], "torch.manual_seed(seed)\na = torch.rand(2)\ntorch.manual_seed(seed)\nb = torch.rand(2)\n"
                      "return a, b", _DRAW[1]),
        _fn(_DRAW[0], "a = torch.rand(2, generator=torch.Generator().manual_seed(seed))\n"
                      "b = torch.rand(2, generator=torch.Generator().manual_seed(seed))\nreturn a, b", _DRAW[1]),
    ],
    ("02_create_graph", 2): [
        "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\npasses = watch_backward(y)\n"
        "y.backward(create_graph=True)\ny.backward()\ncheck_backward_twice(x, y, passes)",
    ],
    ("03_cost_and_approximations", 1): [
        "import numpy as np\n" + _fn(_LINE[0], "slope, intercept = np.polyfit(steps, mib, 1)\n"
                                               "return intercept + slope * n_steps", _LINE[1]),
    ],
    ("03_cost_and_approximations", 4): [
        "import math\n" + _fn(_TASKS[0], "return math.ceil((1.96 * per_task.std(unbiased=False).item() / half_width) ** 2)",
                              _TASKS[1]),
    ],
    ("04_blackbox_vs_maml", 3): [
        _SHEARED + "_, accs = evaluate(maml_net, maml_batched, sheared_batches, steps=5)\n"
        + _MEASURED_STEPS.format("round(accs.mean().item(), 3)"),
    ],
    ("04_blackbox_vs_maml", 4): [
        _fn(_FLIP[0], "return sinusoid(x, amplitude, phase - torch.pi), sinusoid(x=x, amplitude=-amplitude, phase=phase)",
            _FLIP[1]),
    ],    ("06_further_remedies", 1): [
        "def ridge_head(features, targets, lam):\n    n = features.shape[0]\n"
        "    return features.T @ torch.linalg.inv(features @ features.T + lam * torch.eye(n, dtype=features.dtype)) @ targets\n"
        "check_ridge_head(ridge_head)",  # the n×n system, by its inverse
    ],
    ("06_further_remedies", 2): [
        "def cg(matvec, b, steps):\n    x, r = torch.zeros_like(b), b.clone()\n    p = r.clone()\n"
        "    for _ in range(steps):\n        ap = matvec(p)\n        a = (r @ r) / (p @ ap)\n"
        "        x, r_new = x + a * p, r - a * ap\n        p = r_new + (r_new @ r_new) / (r @ r) * p\n        r = r_new\n"
        "    return x\ncheck_conjugate_gradient(cg)",
    ],
    ("06_further_remedies", 3): [
        "check_implicit_meta_gradient(lambda hessian, query_grad, lam: lam * torch.linalg.solve("
        "hessian + lam * torch.eye(len(query_grad), dtype=hessian.dtype), query_grad))",
    ],
}

EXERCISES = {(path.stem, n): (student, solution)
             for path in NOTEBOOKS for n, student, solution in read_exercises(path)[1]}


def test_every_notebook_follows_the_convention():
    for path in NOTEBOOKS:
        _, exercises = read_exercises(path)
        assert len(exercises) >= (1 if path.stem.startswith("_") else 3), f"{path.name}: at least three exercises"
        for n, student, _ in exercises:
            assert "TODO" in student, f"{path.name}, exercise {n}: the student's cell marks what to fill in"
            assert re.search(r"^check_\w+\(.*\)\s*\Z", student, re.M | re.S), (
                f"{path.name}, exercise {n}: the student's cell ends with the check call")
    assert set(WRONG) == set(EXERCISES), "every exercise has wrong answers in WRONG, and no other"
    assert all(len(answers) >= 4 for answers in WRONG.values())


def test_the_package_holds_no_solutions():
    for module in (ROOT / "lecture_utils" / "exercises").glob("*.py"):
        assert not re.search(r"def (worked_)?solution", module.read_text()), (
            f"{module.name}: the solution lives folded in its notebook only")


@pytest.mark.parametrize("key", sorted(EXERCISES), ids=lambda k: f"{k[0]}-ex{k[1]}")
def test_solution_passes_and_unsolved_cell_does_not(key):
    student, solution = EXERCISES[key]
    assert run(key[0], solution).startswith("Correct:"), "the folded solution passes its check"
    assert run(key[0], student).startswith("Not yet:"), "the unsolved cell says Not yet"
    for answer in RIGHT.get(key, []):
        assert run(key[0], answer).startswith("Correct:"), answer


@pytest.mark.parametrize("key", sorted(WRONG), ids=lambda k: f"{k[0]}-ex{k[1]}")
def test_wrong_answers_say_not_yet(key):
    for answer in WRONG[key]:
        line = run(key[0], answer)
        assert line.startswith("Not yet:"), f"{answer}\n-> {line}"


def test_every_function_a_check_makes_unavailable_exists():
    """The checks name package functions by dotted path ("lecture_utils.maml.adapt"); a renamed or
    moved function must fail here, not leave its exercise open to the package's own version."""
    from lecture_utils.exercises import _resolve
    paths = {path for module in (ROOT / "lecture_utils" / "exercises").glob("*.py")
             for path in re.findall(r"[\"'](lecture_utils(?:\.\w+)+)[\"']", module.read_text())}
    assert "lecture_utils.maml.adapt" in paths
    for path in sorted(paths):
        owner, name = _resolve(path)
        assert callable(getattr(owner, name)), path


def test_unavailable_restores_every_binding_even_after_an_error():
    import lecture_utils.maml as maml
    from lecture_utils.exercises import MAML_FUNCTIONS, WriteItYourself, call_student, unavailable
    import lecture_utils.reptile as reptile
    adapt, objective = maml.adapt, maml.MAML.objective
    student_globals = {"adapt": adapt}
    student = eval("lambda: adapt()", student_globals)
    with pytest.raises(ZeroDivisionError):
        with unavailable(*MAML_FUNCTIONS, student=student):
            with pytest.raises(WriteItYourself):
                student()
            with pytest.raises(WriteItYourself):
                maml.MAML().objective(None, None)
            with pytest.raises(WriteItYourself):
                reptile.adapt()  # the same function, imported into another module
            assert call_student(adapt, name="answer") == (False, None)  # the function itself, passed as the answer
            1 / 0
    assert maml.adapt is adapt and reptile.adapt is adapt and student_globals["adapt"] is adapt
    assert maml.MAML.objective is objective
    assert call_student(lambda: 3)[1] == 3

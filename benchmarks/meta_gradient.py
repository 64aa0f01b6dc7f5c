"""How fast is one MAML meta-gradient? lecture_utils against the usual ways of writing it.

Compares, for the same model, tasks and initial weights:

  (a) loop   - a Python loop over tasks with torch.autograd.grad(create_graph=True),
               the structure of the popular PyTorch MAML implementations;
  (b) higher - the `higher` library's differentiable inner loop (skipped if not installed:
               pip install -e '.[bench]');
  (c) ours   - lecture_utils.maml.MAML (vmap over tasks for the MLP, loop for Conv4).

It prints milliseconds per meta-gradient (median), the MiB the autograd graph saves for
backward (device-independent; plus the CUDA peak on a GPU), the speed-up of (c) over (a)
measured in this same run, and the largest gradient difference from (a), relative to the
largest gradient entry. Run:  .venv/bin/python benchmarks/meta_gradient.py [--quick] [--device cuda]
"""
from __future__ import annotations

import argparse
import importlib.util

import torch
import torch.nn.functional as F
from torch.func import functional_call

from lecture_utils.cost import measure
from lecture_utils.device import get_device
from lecture_utils.maml import MAML
from lecture_utils.models import Conv4, SineMLP
from lecture_utils.sinusoid import SinusoidTasks


def loop_meta_loss(model, batch, loss_fn, inner_lr, steps):
    """(a): one task at a time, autograd.grad with create_graph=True."""
    names, theta = zip(*model.named_parameters())
    total = 0.0
    for x_spt, y_spt, x_qry, y_qry in zip(*batch):
        fast = list(theta)
        for _ in range(steps):
            spt_loss = loss_fn(functional_call(model, dict(zip(names, fast)), (x_spt,)), y_spt)
            grads = torch.autograd.grad(spt_loss, fast, create_graph=True)
            fast = [w - inner_lr * g for w, g in zip(fast, grads)]
        total = total + loss_fn(functional_call(model, dict(zip(names, fast)), (x_qry,)), y_qry)
    return total / len(batch[0])


def higher_meta_loss(model, batch, loss_fn, inner_lr, steps):
    """(b): the `higher` library, one task at a time."""
    import higher

    inner_opt = torch.optim.SGD(model.parameters(), lr=inner_lr)
    total = 0.0
    for x_spt, y_spt, x_qry, y_qry in zip(*batch):
        with higher.innerloop_ctx(model, inner_opt, copy_initial_weights=False) as (fmodel, diffopt):
            for _ in range(steps):
                diffopt.step(loss_fn(fmodel(x_spt), y_spt))
            total = total + loss_fn(fmodel(x_qry), y_qry)
    return total / len(batch[0])


def image_batch(tasks, n_way, k, q, generator):
    x = torch.rand(tasks, n_way * (k + q), 1, 28, 28, generator=generator)
    labels = torch.arange(n_way).repeat_interleave(k + q).repeat(tasks, 1)
    split = n_way * k
    return x[:, :split], labels[:, :split], x[:, split:], labels[:, split:]


def gradient(model, make_loss):
    return torch.cat([g.flatten() for g in torch.autograd.grad(make_loss(), list(model.parameters()))])


def run_case(name, model, batch, task, inner_lr, steps, device, repeats):
    alg = MAML(task=task, inner_lr=inner_lr, inner_steps=steps)
    loss_fn = alg.loss_fn
    makers = {"loop": lambda: loop_meta_loss(model, batch, loss_fn, inner_lr, steps),
              "ours": lambda: alg.objective(model, batch)[0]}
    if importlib.util.find_spec("higher"):
        makers["higher"] = lambda: higher_meta_loss(model, batch, loss_fn, inner_lr, steps)
    reference = gradient(model, makers["loop"])
    rows = {}
    for impl, make_loss in makers.items():
        cost = measure(make_loss, device, repeats=repeats)
        diff = (gradient(model, make_loss) - reference).abs().max() / reference.abs().max()
        rows[impl] = cost | {"grad_diff": diff.item()}
    for impl in ("loop", "higher", "ours"):
        if impl not in rows:
            print(f"{name:<26} {impl:<7} {'skipped: higher is not installed':>40}")
            continue
        r = rows[impl]
        peak = f"{r['cuda_peak_mib']:9.1f}" if "cuda_peak_mib" in r else f"{'-':>9}"
        print(f"{name:<26} {impl:<7} {r['ms']:10.1f} {r['saved_mib']:10.1f} {peak} "
              f"{rows['loop']['ms'] / r['ms']:8.2f}x {r['grad_diff']:10.1e}")
    return rows["loop"]["ms"] / rows["ours"]["ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: lecture_utils.device)")
    parser.add_argument("--quick", action="store_true", help="fewer Conv4 tasks and repeats (a smoke run)")
    args = parser.parse_args()
    device = get_device(args.device, source="--device")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    conv_tasks = 4 if args.quick else 32
    print(f"device: {device}; threads: {torch.get_num_threads()}; torch {torch.__version__}")
    print(f"{'case':<26} {'impl':<7} {'ms/grad':>10} {'saved MiB':>10} {'cuda MiB':>9} {'vs loop':>9} {'grad diff':>10}")
    speedups = {}
    mlp = SineMLP().to(device)
    mlp_batch = SinusoidTasks().sample(25, 10, 10, g, device).tasks
    for steps in (1, 5):
        speedups[f"mlp_{steps}step"] = run_case(f"MLP 25 tasks K=10, {steps} step", mlp, mlp_batch,
                                                "regression", 0.01, steps, device, repeats=3 if args.quick else 20)
    conv = Conv4(5).to(device)
    conv_batch = tuple(t.to(device) for t in image_batch(conv_tasks, 5, 1, 5, g))
    for steps in (1, 5):
        speedups[f"conv4_{steps}step"] = run_case(f"Conv4 5w1s {conv_tasks} tasks, {steps} step", conv, conv_batch,
                                                  "classification", 0.4, steps, device, repeats=1 if args.quick else 3)
    print("Conv4 episodes: 5-way 1-shot, 5 query images per class; Conv4 with 64 channels.")
    print(f"speedup_mlp_1step={speedups['mlp_1step']:.2f} speedup_conv4_1step={speedups['conv4_1step']:.2f}")


if __name__ == "__main__":
    main()

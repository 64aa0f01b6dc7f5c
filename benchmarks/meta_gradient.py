"""How fast is one MAML meta-gradient? lecture_utils against the usual ways of writing it.

Compares, for the same model, tasks and initial weights:

  (a) loop    - a Python loop over tasks with torch.autograd.grad(create_graph=True),
                the structure of the popular PyTorch MAML implementations;
  (b) higher  - the `higher` library's differentiable inner loop (skipped if not installed:
                pip install -e '.[bench]');
  (c) ours    - lecture_utils.maml.MAML with batching="auto" (on the CPU: "expand" for the MLP,
                the per-task loop for Conv4; on a GPU: "vmap").

With --candidates, the other ways of batching considered for ``batching="auto"``:

  vmap    - MAML(batching="vmap"): torch.func.grad under vmap, tasks as grouped convolutions;
  expand  - MAML(batching="expand"), Conv4 only (it is "ours" for the MLP): θ expanded into one
            copy per task, one batched forward pass and one autograd.grad for all tasks;
  chlast  - (a) with the Conv4 weights and images in channels_last memory format;
  compile - (a)'s per-task meta-loss through torch.compile.

It pins the CPU threads (--threads, default 1) and prints them with the load average, then
milliseconds per meta-gradient (median and min-max over repeats taken in turns, so that a busy
machine slows every implementation alike, each timed straight after an untimed run of its own), the MiB the autograd graph saves for backward
(device-independent; plus the CUDA peak on a GPU), the speed-up over (a) measured in this same
run, and the largest gradient difference from (a), relative to the largest gradient entry.
Run:  .venv/bin/python benchmarks/meta_gradient.py [--quick] [--candidates] [--device cuda]

Measured on the project's 2-core CPU (AMD EPYC), 1 thread, quiet (load average about 1:
this benchmark's own thread), torch 2.13.0, median ms (min-max), speed-up over (a) in the same run:

  default run (MLP: 25 tasks, 20 repeats; Conv4-64: 32 tasks, 5 repeats)
  MLP 1 step    loop 19.7 (19.4-22.6) | ours 1.7 (1.6-2.2), 11.4x
  MLP 5 steps   loop 81.5 (80.1-86.5) | ours 5.8 (5.5-6.4), 14.1x
  Conv4 1 step  loop 2022 (1964-2351) | ours 2107 (2074-2446), 0.96x
  Conv4 5 steps loop 5310 (5000-5386) | ours 5444 (5339-5585), 0.98x

  default run again, with higher 0.2.1 installed
  MLP 1 step    loop 19.4 | higher 39.7 (0.49x) | ours 1.7 (11.7x)
  MLP 5 steps   loop 78.9 | higher 105.5 (0.75x) | ours 5.8 (13.6x)
  Conv4 1 step  loop 1999 | higher 2153 (0.93x) | ours 2111 (0.95x)
  Conv4 5 steps loop 5277 | higher 5517 (0.96x) | ours 5541 (0.95x)

  --quick --candidates (MLP: 5 repeats; Conv4: 8 tasks, 3 repeats)
  MLP 1 step    loop 20.4 | ours 1.8 (11.1x) | vmap 3.1 (6.5x)
  MLP 5 steps   loop 83.8 | ours 6.3 (13.4x) | vmap 12.8 (6.6x)
  Conv4 1 step  loop 497 | ours 524 (0.95x) | vmap 824 (0.60x) | expand 835 (0.60x) |
                chlast 562 (0.88x, 4.6e-5 off) | compile: fails
  Conv4 5 steps loop 1292 | ours 1342 (0.96x) | vmap 1552 (0.83x) | expand 1608 (0.80x) |
                chlast 1421 (0.91x, 4.6e-5 off) | compile: fails
  Conv4, one set of weights, one batch of n images, second-order pass, ms per image:
                n=5 4.72 | n=25 3.93 (1.20x) | n=160 4.86 (0.97x) | n=800 10.87 (0.43x)
  Conv4 query pass alone, 1 step: 294 ms of the loop's 481 (61%): at most 1.63x for any exact method

For the MLP, "ours" is batching="expand" with ``batching.mlp_forward_tasks`` (the T tasks' forward
passes as three batched matrix products, torch.baddbmm, instead of vmap over the module) and
``batching.per_task_loss`` (one loss call for all tasks instead of vmap over the loss). At these sizes
the time was per-operation overhead: the previous round's expand, vmap over the module and the
loss, measured 5.6x at 1 step and 7.4x at 5 in its default run. Gradients agree with the loop
within 1.6e-7 of the largest entry.

For Conv4 on the CPU no candidate reaches 1.5x over the loop, so ``batching="auto"`` stays the
per-task loop there (ours and the loop differ by noise: the same computation). compile fails
outright ("torch.compile with aot_autograd does not currently support double backward");
chlast is slower and differs by 4.6e-5 relative (over the 1e-5 bound); vmap and expand are
exact (below 6e-7 in float32) but slower, since the convolutions become grouped convolutions. The
last two rows say why none can. Every exact meta-gradient runs the query images forward and
backward once per task, and that alone is 61% of the loop's time: even with the support set's
second-order work free, 1.63x is the ceiling, and 1.5x (321 ms) would leave that work 27 ms of
the 187 it takes. Batching cannot make it so: even the best case, every image through the same
weights, costs about the same per image at n = 160 (32 tasks' support sets) as at n = 5 (one
task's), and far more at n = 800.
On one thread the time is arithmetic (convolution and its backward, max-pool, the batch norm's
elementwise operations), not Python dispatch. Making the arithmetic cheaper helps the loop and
ours alike: BatchStatNorm2d computes x - mean once and folds its weight into 1/sqrt(var + eps);
in the same process, before and after, a chars5_maml training step (Conv4-32) went from 221 to
189 ms.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call

from lecture_utils.cost import _sync, graph_saved_bytes
from lecture_utils.device import get_device, seed_everything
from lecture_utils.maml import LOSSES, MAML
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


def package_meta_loss(batching):
    """MAML(batching=...) as a candidate: "vmap" (torch.func.grad under vmap; convolutions become
    grouped convolutions) or "expand" (θ copied per task, one autograd.grad: batching.adapt_tasks)."""
    def meta_loss(model, batch, loss_fn, inner_lr, steps):
        task = next(name for name, fn in LOSSES.items() if fn is loss_fn)
        return MAML(task=task, inner_lr=inner_lr, inner_steps=steps, batching=batching).objective(model, batch)[0]
    return meta_loss


def compiled_loop_meta_loss(model, batch, loss_fn, inner_lr, steps, cache={}):
    """(e) compile: the per-task meta-loss of (a) through torch.compile."""
    if "fn" not in cache:
        def one_task(x_spt, y_spt, x_qry, y_qry):
            names, theta = zip(*model.named_parameters())
            fast = list(theta)
            for _ in range(steps):
                spt_loss = loss_fn(functional_call(model, dict(zip(names, fast)), (x_spt,)), y_spt)
                grads = torch.autograd.grad(spt_loss, fast, create_graph=True)
                fast = [w - inner_lr * g for w, g in zip(fast, grads)]
            return loss_fn(functional_call(model, dict(zip(names, fast)), (x_qry,)), y_qry)
        cache["fn"] = torch.compile(one_task)
    return sum(cache["fn"](*task) for task in zip(*batch)) / len(batch[0])


def image_batch(tasks, n_way, k, q, generator):
    x = torch.rand(tasks, n_way * (k + q), 1, 28, 28, generator=generator)
    labels = torch.arange(n_way).repeat_interleave(k + q).repeat(tasks, 1)
    split = n_way * k
    return x[:, :split], labels[:, :split], x[:, split:], labels[:, split:]


def gradient(model, make_loss):
    return torch.cat([g.flatten() for g in torch.autograd.grad(make_loss(), list(model.parameters()))])


def timed(makers: dict, device, repeats) -> dict:
    """Milliseconds per meta-gradient (build the meta-loss, back-propagate it) of every
    implementation: median, min and max over ``repeats`` after one warm-up, the repeats taken in
    turns (loop, ours, loop, ours, ...) so that a busy machine slows them alike; and the MiB each
    graph saves for backward. Each timed run follows an untimed run of the same implementation, as
    in a training loop: straight after the loop's many small allocations the MLP's "ours" took
    2.15 ms instead of 1.40 (caches and allocator, not the computation). An implementation that
    fails is reported with its error."""
    rows, times = {}, {}
    for impl, make_loss in makers.items():
        try:
            make_loss().backward()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            loss = make_loss()
            rows[impl] = {"saved_mib": graph_saved_bytes(loss) / 2**20}
            loss.backward()
            del loss
            if device.type == "cuda":
                rows[impl]["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            times[impl] = []
        except Exception as error:  # a candidate that does not run is a result too
            rows[impl] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:70]}"}
    for _ in range(repeats):
        for impl in times:
            makers[impl]().backward()  # untimed: time each run right after one of its own, as in training
            _sync(device)
            start = time.perf_counter()
            makers[impl]().backward()
            _sync(device)
            times[impl].append((time.perf_counter() - start) * 1e3)
    for impl, ts in times.items():
        rows[impl].update(ms=statistics.median(ts), min=min(ts), max=max(ts))
    return rows


def run_case(name, model, batch, task, inner_lr, steps, device, repeats, extra=None):
    """One table block: every implementation against (a) on the same model and tasks. ``extra``
    adds candidates (name -> (model, batch, meta-loss function)) measured the same way."""
    alg = MAML(task=task, inner_lr=inner_lr, inner_steps=steps)
    loss_fn = alg.loss_fn
    makers = {"loop": lambda: loop_meta_loss(model, batch, loss_fn, inner_lr, steps),
              "ours": lambda: alg.objective(model, batch)[0]}
    if importlib.util.find_spec("higher"):
        makers["higher"] = lambda: higher_meta_loss(model, batch, loss_fn, inner_lr, steps)
    models = {impl: model for impl in makers}
    for impl, (m, b, fn) in (extra or {}).items():
        makers[impl] = lambda m=m, b=b, fn=fn: fn(m, b, loss_fn, inner_lr, steps)
        models[impl] = m
    reference = gradient(model, makers["loop"])
    rows = timed(makers, device, repeats)
    for impl, row in rows.items():
        if "error" not in row:
            row["grad_diff"] = ((gradient(models[impl], makers[impl]) - reference).abs().max()
                                / reference.abs().max()).item()
    for impl in ["loop", "higher", "ours", *(extra or {})]:
        if impl not in rows:
            print(f"{name:<26} {impl:<9} {'skipped: higher is not installed':>40}")
            continue
        r = rows[impl]
        if "error" in r:
            print(f"{name:<26} {impl:<9} failed: {r['error']}")
            continue
        peak = f"{r['cuda_peak_mib']:9.1f}" if "cuda_peak_mib" in r else f"{'-':>9}"
        print(f"{name:<26} {impl:<9} {r['ms']:10.1f} {r['min']:8.1f}-{r['max']:<8.1f} {r['saved_mib']:10.1f} {peak} "
              f"{rows['loop']['ms'] / r['ms']:8.2f}x {r['grad_diff']:10.1e}")
    return rows["loop"]["ms"] / rows["ours"]["ms"]


def conv4_candidates(conv, batch):
    """The Conv4 candidates of the docstring, each as (model, batch, meta-loss function)."""
    import copy

    last = copy.deepcopy(conv).to(memory_format=torch.channels_last)
    last_batch = (batch[0].flatten(0, 1).contiguous(memory_format=torch.channels_last).view_as(batch[0]),
                  batch[1], batch[2].flatten(0, 1).contiguous(memory_format=torch.channels_last).view_as(batch[2]),
                  batch[3])
    return {"vmap": (conv, batch, package_meta_loss("vmap")),
            "expand": (conv, batch, package_meta_loss("expand")),
            "chlast": (last, last_batch, loop_meta_loss),
            "compile": (conv, batch, compiled_loop_meta_loss)}


def conv4_batch_scaling(conv, device, repeats):
    """The best case for any batching of tasks: Conv4 with one set of weights on a batch of n
    images. Prints ms per image for a second-order pass (forward, gradient with create_graph,
    backward through it) at n = 5 (one task's support set) up to 800; batching can only win
    where the per-image time falls as n grows."""
    params = list(conv.parameters())

    def second_order(x):
        grads = torch.autograd.grad(conv(x).square().mean(), params, create_graph=True)
        return sum(g.square().sum() for g in grads)          # its backward is the second pass

    sizes = (5, 25, 160, 800)
    images = {n: torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(n)).to(device) for n in sizes}
    rows = timed({n: lambda x=images[n]: second_order(x) for n in sizes}, device, repeats)
    per_image = {n: rows[n]["ms"] / n for n in sizes}
    for n in sizes:
        print(f"Conv4 one batch of {n:>3} images: {per_image[n]:6.2f} ms per image "
              f"({per_image[5] / per_image[n]:.2f}x the per-image speed at 5)")


def conv4_query_bound(conv, batch, device, repeats):
    """A floor under every exact meta-gradient: each must run the query images forward and backward
    once per task (at ϕ_i; timed here at θ, the same arithmetic: (a) with no inner step). The
    loop's time over this floor's is the most any batching could gain even if the support set's
    second-order work were free."""
    rows = timed({"loop": lambda: loop_meta_loss(conv, batch, F.cross_entropy, 0.4, 1),
                  "query": lambda: loop_meta_loss(conv, batch, F.cross_entropy, 0.4, 0)}, device, repeats)
    bound = rows["loop"]["ms"] / rows["query"]["ms"]
    print(f"Conv4 query pass alone, 1 step: {rows['query']['ms']:.0f} ms against the loop's {rows['loop']['ms']:.0f} "
          f"({rows['query']['ms'] / rows['loop']['ms']:.0%}): no exact method can be faster than {bound:.2f}x the loop")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: lecture_utils.device)")
    parser.add_argument("--quick", action="store_true", help="8 Conv4 tasks instead of 32, fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, pinned (default 1)")
    parser.add_argument("--candidates", action="store_true",
                        help="also measure the candidates of the docstring (vmap, expand, chlast, compile), "
                             "Conv4's per-image time by batch size and its query-pass floor")
    args = parser.parse_args()
    device = get_device(args.device, source="--device")
    torch.set_num_threads(args.threads)
    seed_everything(0)  # as the notebooks: full float32 on NVIDIA GPUs (no TF32 convolutions)
    g = torch.Generator().manual_seed(0)
    conv_tasks = 8 if args.quick else 32
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"device: {device}; threads: {torch.get_num_threads()} (OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); load average {load}; torch {torch.__version__}"
          + (f"; TF32 convolutions {torch.backends.cudnn.allow_tf32}" if device.type == "cuda" else ""))
    print(f"{'case':<26} {'impl':<9} {'ms/grad':>10} {'min-max':>17} {'saved MiB':>10} {'cuda MiB':>9} "
          f"{'vs loop':>9} {'grad diff':>10}")
    speedups = {}
    mlp = SineMLP().to(device)
    mlp_batch = SinusoidTasks().sample(25, 10, 10, g, device).tasks
    mlp_extra = {"vmap": (mlp, mlp_batch, package_meta_loss("vmap"))} if args.candidates else None
    for steps in (1, 5):
        speedups[f"mlp_{steps}step"] = run_case(f"MLP 25 tasks K=10, {steps} step", mlp, mlp_batch,
                                                "regression", 0.01, steps, device,
                                                repeats=5 if args.quick else 20, extra=mlp_extra)
    conv = Conv4(5).to(device)
    conv_batch = tuple(t.to(device) for t in image_batch(conv_tasks, 5, 1, 5, g))
    extra = conv4_candidates(conv, conv_batch) if args.candidates else None
    for steps in (1, 5):
        speedups[f"conv4_{steps}step"] = run_case(f"Conv4 5w1s {conv_tasks} tasks, {steps} step", conv, conv_batch,
                                                  "classification", 0.4, steps, device,
                                                  repeats=3 if args.quick else 5, extra=extra)
    if args.candidates:
        conv4_batch_scaling(conv, device, repeats=3 if args.quick else 5)
        conv4_query_bound(conv, conv_batch, device, repeats=3 if args.quick else 5)
    print("Conv4 episodes: 5-way 1-shot, 5 query images per class; Conv4 with 64 channels.")
    print(f"speedup_mlp_1step={speedups['mlp_1step']:.2f} speedup_conv4_1step={speedups['conv4_1step']:.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# One pass over what only a GPU can check, in about four minutes at most:
#   1. torch and CUDA are there (nothing is installed: the machine may have no network);
#   2. lecture_utils.device's second-order MAML probe on cuda: result, time, and how far the GPU's
#      meta-gradient is from the CPU's in full float32 and with torch's default TF32 convolutions;
#   3. the tests marked `cuda`;
#   4. benchmarks/meta_gradient.py --device cuda --quick;
#   5. scripts/run_notebooks_gpu.py (every notebook, copies only).
# Every step has a timeout and its own log in $OUT (default /tmp/gpu_out); summary.txt lists the
# exit code of each. Run from anywhere:  bash scripts/gpu_check.sh   (PYTHON=... picks the interpreter)
# Exit code: 0 all steps passed, 1 a step failed, 2 no CUDA GPU, 3 torch cannot be imported.
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/gpu_out}"
BUDGET="${GPU_CHECK_SECONDS:-230}"  # for all steps together
mkdir -p "$OUT"
cd "$REPO" || exit 1
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's lecture_utils, installed or not
unset MAML_LECTURE_DEVICE MAML_LECTURE_PROBE
status=0
: > "$OUT/summary.txt"

step() {  # step NAME CAP_SECONDS COMMAND...: run with min(CAP, time left), log to $OUT/NAME.log
  local name=$1 cap=$2; shift 2
  local left=$(( BUDGET - SECONDS )); [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 10 ]; then
    echo "$name: skipped (time budget of ${BUDGET}s spent)" | tee -a "$OUT/summary.txt"; status=1; return
  fi
  echo "== $name (timeout ${cap}s)"
  local start=$SECONDS
  timeout "$cap" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  cat "$OUT/$name.log"
  local verdict="ok"; [ "$rc" -ne 0 ] && { verdict="FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out'))"; status=1; }
  echo "$name: $verdict in $(( SECONDS - start ))s" | tee -a "$OUT/summary.txt"
}

echo "== torch"
if ! timeout 60 "$PYTHON" -c "import torch; print(torch.__version__, torch.cuda.is_available())" > "$OUT/torch.log" 2>&1; then
  cat "$OUT/torch.log"
  echo "torch cannot be imported by $PYTHON (see above); install a CUDA build of torch first. Nothing else ran." \
    | tee -a "$OUT/summary.txt"
  exit 3
fi
cat "$OUT/torch.log"
if ! grep -q " True$" "$OUT/torch.log"; then
  echo "No CUDA GPU visible to torch $(cut -d' ' -f1 "$OUT/torch.log") (a CPU build, or no GPU): nothing to check here." \
    | tee -a "$OUT/summary.txt"
  exit 2
fi
"$PYTHON" - <<'EOF' | tee -a "$OUT/summary.txt"
import importlib.util, platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name(0)}, cudnn {torch.backends.cudnn.version()}")
missing = [m for m in ("numpy", "pytest", "nbclient", "nbformat", "ipykernel", "matplotlib", "ipywidgets")
           if importlib.util.find_spec(m) is None]
print("missing modules:", ", ".join(missing) or "none")
EOF

step probe 90 "$PYTHON" - <<'EOF'
import time, torch
from lecture_utils import device as dev, probe

start = time.perf_counter()
reason = probe.probe_device("cuda")
print(f"probe_device('cuda'): {'pass' if reason is None else 'FAIL: ' + reason} "
      f"({time.perf_counter() - start:.2f} s, CUDA start-up included)")
start = time.perf_counter()
again = probe._run_probe(torch.device("cuda"))
print(f"again, warm: {'pass' if again is None else 'FAIL'} ({time.perf_counter() - start:.3f} s)")
print(f"get_device() -> {dev.get_device()}; describe_device() -> {dev.describe_device()}")

def worst(precision):  # the largest per-parameter relative difference, GPU against CPU
    rows = []
    for name, (model, batch, maml) in dev._probe_cases().items():
        cpu = dev._meta_gradient(model, batch, maml, torch.device("cpu"))
        gpu = dev._meta_gradient(model, batch, maml, torch.device("cuda"))
        rows += [(float((gpu[p] - g).norm() / max(g.norm(), dev.ATOL)), f"{name} {p}") for p, g in cpu.items()]
    rel, where = max(rows)
    print(f"{precision}: largest relative difference {rel:.1e} ({where}); tolerance {dev.RTOL:.0e}")

with dev._full_float32():
    worst("full float32 (as probed)")
print(f"torch defaults: cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
      f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}")
worst("torch defaults (TF32 convolutions)")
raise SystemExit(0 if reason is None else 1)
EOF
step cuda_tests 60 "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda tests/
step benchmark 60 "$PYTHON" benchmarks/meta_gradient.py --device cuda --quick
step notebooks 200 "$PYTHON" scripts/run_notebooks_gpu.py --timeout 120
echo "== summary ($SECONDS s in all; logs in $OUT)"
cat "$OUT/summary.txt"
exit $status

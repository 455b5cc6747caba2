#!/usr/bin/env bash
# Every GPU check of xpnet in one command, for a lent GPU machine (under 8 minutes in all),
# writing each table and log to OUTDIR, 8 files at most (the device tool brings back 8):
#   summary.md     the CUDA preflight, each step's status and time, the environment, the precision,
#                  the commit, the train accuracies
#   tests.log      the cupy backend of the test suite (ci/gpu.sh's selection): first, so its
#                  summary is never lost to a spent budget
#   nosync.log     ci/gpu_nosync.py: the book's loop and Trainer.train_step with zero syncs
#   train-gpu.log  python3 -m xpnet train --device cuda, 5 epochs on the bundled sample
#   train-cpu.log  the same on the CPU (alongside, BLAS threads capped); the two test accuracies
#                  must agree within 0.5 points
#   step-b100.md   benchmarks/bench_step.py --device cuda --batch 100 (xpnet and PyTorch CUDA)
#   epoch.md       benchmarks/bench_epoch.py --device cuda
#   step-b1000.md  bench_step.py at batch 1000
# Both sides compute in full FP32: CUPY_TF32=0 here, and bench_step.py turns PyTorch's TF32 off
# (torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False).
# Each step has its own time budget and is stopped with SIGINT (pytest then prints its summary);
# a step that would start with under 20 s of the total budget (XPNET_LENT_BUDGET, default 450 s)
# left is skipped, and summary.md says so (a dry run: twice each budget, 900 s).  A GPU that fails the CUDA preflight stops the run at
# once (exit 1): no CPU rehearsal spends the lease.
#
# Usage: bash ci/gpu-lent.sh OUTDIR [--dry-run] [--commit SHA]
# --commit (or XPNET_COMMIT): the commit being run; the device copy has no .git to ask.
# --dry-run (automatic when this machine has no GPU) rehearses on the CPU: every step runs with
# --device cpu and small sizes, and summary.md says what could not be checked.
# Rehearse here, from the repository root:  PYTHON=python3 bash ci/gpu-lent.sh out/lent --dry-run
#
# With the device tool (see ci/README.md): once, in the repository root,
#   mkdir -p .whl && cp ../shared/wheels/*.whl .whl/   (.whl/ is git-ignored)
# then one `run` call with carry [".whl"], timeout_s 540 and the command
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#     --target .whl-site .whl/*.whl && export PYTHONPATH=$PWD/.whl-site && bash ci/gpu-lent.sh $OUT --commit SHA
set -uo pipefail
OUT="${1:?usage: bash ci/gpu-lent.sh OUTDIR [--dry-run] [--commit SHA]}"
shift
DRY=""
COMMIT="${XPNET_COMMIT:-}"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --dry-run) DRY="--dry-run" ;;
        --commit) [ "$#" -ge 2 ] || { echo "ci/gpu-lent.sh: --commit needs a commit" >&2; exit 2; }
                  COMMIT="$2"; shift ;;
        --commit=*) COMMIT="${1#--commit=}" ;;
        *) echo "ci/gpu-lent.sh: unknown option $1 (expected --dry-run or --commit SHA)" >&2; exit 2 ;;
    esac
    shift
done
PY="${PYTHON:-python3}"
BUDGET="${XPNET_LENT_BUDGET:-}"
CPU_THREADS="${XPNET_CPU_THREADS:-4}"
mkdir -p "$OUT" || exit 1
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.." || exit 1
if [ -z "$COMMIT" ]; then
    COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo 'unknown (no .git: pass --commit)')"
    git status --porcelain -- xpnet 2>/dev/null | grep -q . && COMMIT="$COMMIT + uncommitted changes in xpnet/"
fi
export XPNET_COMMIT="$COMMIT"
WORK="$(mktemp -d)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$PWD/.cupy-cache}"
export CUPY_TF32=0  # full FP32 on CuPy; bench_step.py pins PyTorch to it too
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
SUMMARY="$OUT/summary.md"
FAILED=0

MODE="GPU"
if [ -n "$DRY" ]; then
    MODE="dry run on the CPU (--dry-run)"
elif ! "$PY" -c "from xpnet import backend; print(backend.get_device('cuda'), 'passed the CUDA preflight')" \
        >"$WORK/preflight" 2>&1; then
    if nvidia-smi -L >/dev/null 2>&1; then
        {
            echo "# ci/gpu-lent.sh: FAILED: this machine has a GPU, and the CUDA preflight failed"
            echo
            echo "- source: $COMMIT"
            echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 1)"
            echo "- stopped at once: nothing else ran. The preflight's output:"
            echo
            echo '```'
            tail -n 30 "$WORK/preflight"
            echo '```'
        } >"$SUMMARY"
        cat "$SUMMARY"
        rm -rf "$WORK"
        exit 1
    fi
    DRY="--dry-run"
    MODE="dry run on the CPU: no GPU answers here (see the CUDA preflight line)"
fi
# A dry run is not on the lease, and a CPU is slower: twice the time, small batches.
if [ -n "$DRY" ]; then DEVICE=cpu; SCALE=2; else DEVICE=cuda; SCALE=1; fi
BUDGET="${BUDGET:-$((450 * SCALE))}"

{
    echo "# ci/gpu-lent.sh: $MODE"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); source: $COMMIT"
    echo "- python: $("$PY" -c 'import sys; print(sys.version.split()[0])'); $("$PY" -c '
import importlib.metadata as m
names = ("numpy", "array-api-compat", "array-api-strict", "cupy-cuda12x", "cupy-cuda13x", "torch")
found = []
for n in names:
    try:
        found.append(f"{n} {m.version(n)}")
    except m.PackageNotFoundError:
        pass
print(", ".join(found))' 2>&1)"
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'none (nvidia-smi absent)')"
    [ -s "$WORK/preflight" ] && echo "- CUDA preflight: $(tail -n 1 "$WORK/preflight")"
    echo "- precision: full FP32 on both sides (CUPY_TF32=0; PyTorch: allow_tf32 False for matmul and cuDNN)"
    echo "- CPU reference run: $CPU_THREADS BLAS/OpenMP threads, alongside the first GPU steps"
    echo
    echo "| step | status | seconds | output |"
    echo "| --- | --- | --- | --- |"
} >"$SUMMARY"

# step NAME BUDGET_S OUTFILE CMD...: run CMD under timeout (SIGINT, then SIGKILL 15 s later),
# record its status in summary.md.
step() {
    local name="$1" budget="$2" file="$3" left status start verdict
    shift 3
    left=$((BUDGET - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "| $name | skipped: ${left} s of the budget left | - | - |" >>"$SUMMARY"; return 0
    fi
    budget=$((budget * SCALE))
    [ "$budget" -gt "$left" ] && budget="$left"
    echo "== $name (budget ${budget} s)"
    start=$SECONDS
    timeout -s INT -k 15 "$budget" "$@" >"$OUT/$file" 2>&1
    status=$?
    case "$status" in
        0) verdict="ok" ;;
        124|137) verdict="TIMEOUT after ${budget} s"; FAILED=1 ;;
        *) verdict="FAILED (exit $status)"; FAILED=1 ;;
    esac
    echo "| $name | $verdict | $((SECONDS - start)) | $file |" >>"$SUMMARY"
    echo "   $verdict in $((SECONDS - start)) s; last line: $(grep . "$OUT/$file" | tail -n 1)"
}
skip() { echo "| $1 | skipped: $2 | - | - |" >>"$SUMMARY"; echo "== $1: skipped ($2)"; }

if [ -n "$DRY" ]; then
    TRAIN=(--epochs 1 --limit 1000); STEP=(--rounds 1 --min-time 0.01 --gap 0 --warmup 0 --no-layers)
    SMALL=20; BIG=20; ONLY=(--only xpnet); EPOCH=(--model simple_convnet --train-size 500 --test-size 200)
    NOSYNC=(--warmup 1 --steps 1)
else
    TRAIN=(--epochs 5); STEP=(--rounds 5); SMALL=100; BIG=1000; ONLY=(); EPOCH=(); NOSYNC=()
fi
TRAIN+=(--model simple_convnet --dataset mnist-sample --seed 0)

# The CPU reference run goes alongside the GPU tests and training, its BLAS threads capped so
# that it leaves the GPU process its cores; it is waited for before the benchmarks.
# (SIGTERM: a background job of a script ignores SIGINT.)
env OMP_NUM_THREADS="$CPU_THREADS" OPENBLAS_NUM_THREADS="$CPU_THREADS" MKL_NUM_THREADS="$CPU_THREADS" \
    timeout -k 15 240 "$PY" -m xpnet train --device cpu "${TRAIN[@]}" --out "$WORK/train-cpu" \
    >"$OUT/train-cpu.log" 2>&1 &
CPU_PID=$!

step "cupy tests (-k 'cupy or cuda')" 150 tests.log env XPNET_REQUIRE_CUDA="$([ -n "$DRY" ] && echo 0 || echo 1)" \
    "$PY" -m pytest tests -q -k "cupy or cuda" -p no:cacheprovider
[ -n "$DRY" ] && skip "cupy tests on a GPU" "no CuPy: the selection was collected and skipped"
step "train --device $DEVICE" 75 train-gpu.log "$PY" -m xpnet train --device "$DEVICE" "${TRAIN[@]}" --out "$WORK/train-gpu"
step "no-sync check (ci/gpu_nosync.py)" 45 nosync.log "$PY" ci/gpu_nosync.py --device "$DEVICE" "${NOSYNC[@]}"
[ -n "$DRY" ] && skip "no-sync verdict" "no GPU: the steps ran, the sync checks did not"
# The benchmarks time host-side launches: the CPU run must be over first.
wait "$CPU_PID"
cpu_status=$?
accuracy() { grep -o 'test acc [0-9.]*' "$1" 2>/dev/null | tail -n 1 | awk '{print $3}'; }
gpu_acc="$(accuracy "$OUT/train-gpu.log")"; cpu_acc="$(accuracy "$OUT/train-cpu.log")"
if [ "$cpu_status" -ne 0 ] || [ -z "$gpu_acc" ] || [ -z "$cpu_acc" ]; then
    verdict="FAILED (CPU run exit $cpu_status; accuracies '${gpu_acc}' / '${cpu_acc}')"; FAILED=1
elif "$PY" -c "import sys; sys.exit(abs($gpu_acc - $cpu_acc) > 0.005)"; then
    verdict="ok: $DEVICE $gpu_acc, cpu $cpu_acc (within 0.5 points)"
else
    verdict="FAILED: $DEVICE $gpu_acc, cpu $cpu_acc (more than 0.5 points apart)"; FAILED=1
fi
echo "| train accuracy, $DEVICE vs cpu | $verdict | - | train-gpu.log, train-cpu.log |" >>"$SUMMARY"
step "bench_step --batch $SMALL" 75 step-b100.md "$PY" benchmarks/bench_step.py --device "$DEVICE" --batch "$SMALL" "${STEP[@]}"
step "bench_epoch" 60 epoch.md "$PY" benchmarks/bench_epoch.py --device "$DEVICE" "${EPOCH[@]}"
step "bench_step --batch $BIG" 45 step-b1000.md "$PY" benchmarks/bench_step.py --device "$DEVICE" --batch "$BIG" "${STEP[@]}" "${ONLY[@]}" --no-layers

files="$(cd "$OUT" && ls | wc -l)"
if [ "$files" -gt 8 ]; then
    echo "| files in OUTDIR | FAILED: $files, the device tool brings back 8 | - | - |" >>"$SUMMARY"; FAILED=1
fi
{
    echo
    echo "Total: $SECONDS s of a $BUDGET s budget. Files: $(cd "$OUT" && ls | tr '\n' ' ')"
    [ -n "$DRY" ] && echo "Dry run: every step ran on the CPU with small sizes; nothing about the GPU was measured."
} >>"$SUMMARY"
rm -rf "$WORK"
echo
cat "$SUMMARY"
exit "$FAILED"

#!/usr/bin/env bash
# The cupy backend of the suite on a CUDA machine, required: it fails, not skips, when CuPy
# cannot run on a GPU.  Two modes:
#   default             a fresh virtualenv .venv-gpu with pip install -e ".[test,cuda12]"
#                       (XPNET_CUDA_EXTRA=cuda13 for a CUDA 13 driver; cuda12 is Colab's)
#   XPNET_GPU_NO_VENV=1 the machine's python3 as it is, the repository on PYTHONPATH,
#                       nothing installed (a lent GPU machine: no network; carry the
#                       pure-Python wheels, see ci/README.md)
# With no arguments it runs the tests of the cupy backend and those marked cuda
# (-k "cupy or cuda", a few minutes); arguments go to pytest instead (e.g. tests/ for all).
# CuPy's compiled kernels are kept in .cupy-cache/ (git-ignored), where a rerun finds them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
if [ "${XPNET_GPU_NO_VENV:-0}" != "1" ]; then
    python3 -m venv .venv-gpu || exit 1
    . .venv-gpu/bin/activate
    python3 -m pip install --quiet --upgrade pip || exit 1
    python3 -m pip install --quiet -e ".[test,${XPNET_CUDA_EXTRA:-cuda12}]" || exit 1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$PWD/.cupy-cache}"
export CUPY_TF32="${CUPY_TF32:-0}"  # full FP32 matmuls: the tolerances assume it
python3 -c "from xpnet import backend; print('ci/gpu.sh:', backend.get_device('cuda'))" || exit 1
if [ "$#" -eq 0 ]; then
    set -- tests -q -k "cupy or cuda" -p no:cacheprovider
fi
XPNET_REQUIRE_CUDA=1 python3 -m pytest "$@"
status=$?
[ "$status" -eq 5 ] && { echo "ci/gpu.sh: pytest collected no tests" >&2; exit 1; }
exit "$status"

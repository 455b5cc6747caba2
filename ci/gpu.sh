#!/usr/bin/env bash
# The same suite on a CUDA runner, with the cupy backend required: it fails, not skips,
# when CuPy cannot run on a GPU.  XPNET_GPU_NO_VENV=1 uses the current Python as is
# (a machine that already has CuPy, e.g. the device tool's lent GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${XPNET_GPU_NO_VENV:-0}" != "1" ]; then
    python3 -m venv .venv-gpu || exit 1
    . .venv-gpu/bin/activate
    python -m pip install --quiet --upgrade pip || exit 1
    python -m pip install --quiet -e ".[test,${XPNET_CUDA_EXTRA:-cuda13}]" || exit 1
fi
python -c "from xpnet import backend; backend.get_device('cuda')" || exit 1
XPNET_REQUIRE_CUDA=1 python -m pytest "$@"
status=$?
[ "$status" -eq 5 ] && { echo "ci/gpu.sh: pytest collected no tests" >&2; exit 1; }
exit "$status"

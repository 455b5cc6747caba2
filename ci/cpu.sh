#!/usr/bin/env bash
# The README's test command: a fresh virtualenv, install with the test extra, run pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-ci || exit 1
. .venv-ci/bin/activate
python -m pip install --quiet --upgrade pip || exit 1
python -m pip install --quiet -e ".[test]" || exit 1
python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "ci/cpu.sh: pytest collected no tests; that is a failure for this project" >&2
    exit 1
fi
exit "$status"

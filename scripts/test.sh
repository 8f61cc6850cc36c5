#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the checks CI runs: ruff, then the test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k game24 -x`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
venv=${RAY_ASD_VENV:-$root/.venv}
cd "$root"
"$venv/bin/ruff" check .
# Tests must pass offline: nothing may reach a model or dataset hub. Two pytest-xdist workers
# (RAY_ASD_TEST_WORKERS; `-n 0` among the arguments runs in this process), the runner's Ray
# tests in two units of one worker each (tests/conftest.py); run in one process the suite kept
# the 2 cores 48% busy (measured 2026-12-02).
workers=${RAY_ASD_TEST_WORKERS:-2}
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$venv/bin/python" -m pytest -n "$workers" "$@"

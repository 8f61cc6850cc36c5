#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the most complete job that exists on the embedded
# default. Today that is the data layer: generate the built-in Game of 24 set (all 1362 solvable
# puzzles) and check that every reference solution passes the task's verifier. The experiment
# runner replaces this with `ray-asd run configs/quickstart.yaml` when it lands.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
venv=${RAY_ASD_VENV:-$root/.venv}
"$venv/bin/ray-asd" data check --task game24 --split all "$@"

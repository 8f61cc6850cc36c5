#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the main job on the embedded default: the
# quickstart experiment (configs/quickstart.yaml) on a local Ray instance, no network needed:
# SmolLM2-135M student, built-in arithmetic task, oracle teacher, strategies random, static
# and loss as three Ray Tune trials tracked in MLflow (runs/mlflow.db). 16 min on 2 cores.
# Then `ray-asd report quickstart` (reports/quickstart/report.html). Run it again after an
# interruption and it resumes; after a finished run it starts a new
# experiment only if you pass another name. Extra arguments go to `ray-asd run`, e.g.
# `--set name=mine --set grid.seed=[0,1]`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
venv=${RAY_ASD_VENV:-$root/.venv}
cd "$root"
resume=()
if [ -d runs/quickstart/tune ] && [ "$#" -eq 0 ]; then
  resume=(--resume)  # an interrupted quickstart continues; a finished one prints its table
fi
"$venv/bin/ray-asd" run configs/quickstart.yaml "${resume[@]}" "$@"
if [ "$#" -eq 0 ]; then  # the paper's analyses of it: reports/quickstart/report.html
  "$venv/bin/ray-asd" report quickstart
fi

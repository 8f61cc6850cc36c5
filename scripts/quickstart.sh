#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the main job on the embedded default: one trial
# of the paper's loop on this CPU with no network (configs/trial-quickstart.yaml: SmolLM2-135M
# student, built-in arithmetic task, oracle teacher, `loss` strategy; a few minutes on 2 cores).
# Extra arguments go to `ray-asd trial`, e.g. `--set strategy.name=random --out runs/random`.
# The Ray runner replaces this with `ray-asd run configs/quickstart.yaml` when it lands.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
venv=${RAY_ASD_VENV:-$root/.venv}
cd "$root"
out=runs/quickstart
if [ -e "$out/checkpoints" ]; then
  resume=(--resume)  # a finished trial prints its table again; an interrupted one continues
else
  resume=()
fi
"$venv/bin/ray-asd" trial configs/trial-quickstart.yaml --out "$out" "${resume[@]}" "$@"

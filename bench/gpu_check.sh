#!/usr/bin/env bash
# The GPU check of issue 19: the Ray-free core on CUDA, at most 8 minutes on one GPU, on a bare
# machine that has torch, transformers and peft but no Ray, no vLLM and no network.
#
#   bench/gpu_check.sh prepare     # HERE, with PyPI: the wheels that machine lacks into .whl/,
#                                  # the tokenizer into .gpu/ (both ignored by git)
#   bench/gpu_check.sh             # THERE (device run, carry [".whl", ".gpu"]): results in $OUT
#   bench/gpu_check.sh --cpu       # a dry run here, tiny model and budget (plumbing only)
#
# Steps there: (1) build a random-init Llama-3.2-1B-shaped student from its config (no
# download; bench/gpu_check.py build); (2) one `ray-asd trial` with the transformers student on
# it: bf16 autocast, LoRA training, evaluation (the oracle teacher, built-in arithmetic); (3) the
# student's scoring throughput (answer pass and teacher-forced scoring pass) against a measured
# 8192^3 bf16 matmul roofline (bench/gpu_check.py throughput). Each step has its own timeout;
# together at most 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [[ "${1:-}" == prepare ]]; then
    PY=${PYTHON:-.venv/bin/python}
    mkdir -p .git/info && touch .git/info/exclude
    grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >>.git/info/exclude
    grep -qx '/.gpu/' .git/info/exclude || echo /.gpu/ >>.git/info/exclude
    # What `ray-asd trial` imports that the machine's image lacks (its list: KINDS.md), at this
    # venv's versions: found by importing the trial's modules here and subtracting the image's
    # packages. Most are mlflow's (ray_asd.trial imports ray_asd.tracking); mlflow-skinny
    # gives the same `mlflow` module without the server's UI.
    needed=(annotated-types antlr4-python3-runtime cachetools databricks-sdk dill
        email-validator fastapi google-api-core google-auth googleapis-common-protos httpcore2
        httpx2 importlib-metadata latex2sympy2-extended math-verify mlflow-skinny
        mlflow-tracing opentelemetry-api opentelemetry-exporter-http-transport
        opentelemetry-exporter-otlp opentelemetry-exporter-otlp-common
        opentelemetry-exporter-otlp-proto-common opentelemetry-exporter-otlp-proto-grpc
        opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-prometheus
        opentelemetry-proto opentelemetry-sdk opentelemetry-semantic-conventions
        opentelemetry-semantic-conventions-ai pydantic pydantic-core pydantic-extra-types
        python-multipart sniffio sqlalchemy sqlparse starlette truststore typing-inspection)
    pins=()
    for name in "${needed[@]}"; do
        version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null) \
            && pins+=("$name==$version") || echo "not in this venv, skipped: $name"
    done
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
    mkdir -p .gpu/tokenizer
    "$PY" - <<'EOF'
from pathlib import Path
from transformers import AutoTokenizer
from ray_asd.models import resolve_model
AutoTokenizer.from_pretrained(resolve_model("tiny:")).save_pretrained(Path(".gpu/tokenizer"))
EOF
    du -sh .whl .gpu
    exit 0
fi

SHAPE=llama-1b SEEDS=256 BATCH=64 TRIAL_DEVICE=cuda
if [[ "${1:-}" == --cpu ]]; then
    SHAPE=tiny SEEDS=16 BATCH=8 TRIAL_DEVICE=cpu
fi
out=${OUT:-/tmp/gpu-check-out}
mkdir -p "$out"
work=$(mktemp -d)
if [[ -d .whl ]]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$work/site" .whl/*.whl
    export PYTHONPATH="$work/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" - <<EOF | tee "$out/versions.txt"
import torch, transformers, peft
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
assert "$TRIAL_DEVICE" == "cpu" or torch.cuda.is_available(), "no CUDA device"
EOF

start=$SECONDS
timeout 90 "$PY" bench/gpu_check.py build "$work/student" --tokenizer .gpu/tokenizer --shape "$SHAPE" \
    | tee "$out/build.txt"

# A small trial: 64 random warm-up items, 2 iterations of 32 picked by loss from 128 seeds,
# 64 test items; 2 epochs at batch 8 (LoRA r 16 on q/k/v/o), bf16 autocast.
cat >"$work/trial.yaml" <<EOF
seed: 0
task: {name: arith, params: {min_ops: 1, max_ops: 3}}
student: {model: $work/student, max_new_tokens: 64, batch_size: 32, autocast: true}
teacher: {backend: oracle}
strategy: loss
budget: {warmup: 64, iterations: 2, per_iteration: 32}
seeds: {n: 128}
eval: {n: 64}
train: {mode: retrain, epochs: 2, batch_size: 8}
EOF
clock=$SECONDS
timeout 240 "$PY" -m ray_asd.cli trial "$work/trial.yaml" --out "$work/trial" 2>&1 | tee "$out/trial.txt"
echo "trial: $((SECONDS - clock)) s" | tee -a "$out/trial.txt"
cp "$work/trial/metrics.csv" "$out/trial_metrics.csv"

timeout 150 "$PY" bench/gpu_check.py throughput "$work/student" --seeds "$SEEDS" --batch "$BATCH" \
    --json "$out/throughput.json" | tee "$out/throughput.txt"
echo "gpu check: $((SECONDS - start)) s in all"

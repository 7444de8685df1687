#!/usr/bin/env bash
# Installs ecglatent and its dependencies into the active Python environment.
# CPU machines get PyTorch's CPU build (a plain `torch` pulls several GB of CUDA packages);
# machines with an NVIDIA GPU (nvidia-smi works) get the CUDA build from the default index.
# Override with ECGLATENT_TORCH=cpu|cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=$(sed -n 's/^torch==//p' constraints/torch.txt)
mode=${ECGLATENT_TORCH:-auto}
if [ "$mode" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then mode=cuda; else mode=cpu; fi
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  if [ "$mode" = cpu ]; then
    # A local CPU wheel (pip's find-links) is taken first; else PyTorch's CPU index.
    "$PY" -m pip install "torch==${TORCH_VERSION}+cpu" 2>/dev/null \
      || "$PY" -m pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu
  else
    "$PY" -m pip install "torch==${TORCH_VERSION}"
  fi
fi
"$PY" -m pip install -c constraints/torch.txt -e ".[dev,postgres]"
# A git checkout gets DVC's default local remote configured in .dvc/config; nothing to do here.
echo "ecglatent installed ($mode torch): run 'dvc repro' with ECGLATENT_DATA_MIRROR set, or online"

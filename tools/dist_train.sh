#!/usr/bin/env bash
# Distributed training with torchrun (GPUs: nccl; CPU-only: gloo):
#   bash tools/dist_train.sh CONFIG NPROC [tools/train.py arguments...]
# Env: NNODES, NODE_RANK, PORT, MASTER_ADDR, PYTHON, OMP_NUM_THREADS (see dist_launch.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG NPROC [tools/train.py arguments...]" >&2
  exit 2
fi
config=$1
nproc=$2
shift 2
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" train.py "$nproc" "$config" "$@"

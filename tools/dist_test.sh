#!/usr/bin/env bash
# Distributed testing with torchrun (GPUs: nccl; CPU-only: gloo):
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py arguments...]
# Env: NNODES, NODE_RANK, PORT, MASTER_ADDR, PYTHON, OMP_NUM_THREADS (see dist_launch.sh).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [tools/test.py arguments...]" >&2
  exit 2
fi
config=$1
checkpoint=$2
nproc=$3
shift 3
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" test.py "$nproc" "$config" "$checkpoint" "$@"

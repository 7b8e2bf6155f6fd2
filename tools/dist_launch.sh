#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run tools/SCRIPT on NPROC processes with torchrun.
# Usage: bash tools/dist_launch.sh SCRIPT NPROC [SCRIPT arguments...]
# Works on GPUs (nccl) and on CPU-only machines (gloo; see lip_det/engine/launch.py).
# Env: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1), PYTHON (python),
#      OMP_NUM_THREADS (default: cores / NPROC, so processes do not oversubscribe the CPU).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SCRIPT NPROC [arguments...]" >&2
  exit 2
fi
SCRIPT=$1
NPROC=$2
shift 2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${OMP_NUM_THREADS:-}" ]; then
  cores=$(nproc 2>/dev/null || echo 1)
  OMP_NUM_THREADS=$(( cores / NPROC > 0 ? cores / NPROC : 1 ))
  export OMP_NUM_THREADS
fi
# Sleeping OpenMP waits: NPROC processes share the cores, spinning threads would steal them.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$NPROC" "$here/$SCRIPT" "$@" --launcher pytorch

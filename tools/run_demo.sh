#!/usr/bin/env bash
# The main job on the embedded default data: generate the synthetic COCO set, train the
# synthetic LIP-ResNet-18 Faster R-CNN + FPN on the CPU (progress lines with ETA), evaluate it
# with tools/test.py and print the 12-number COCO summary (incl. AP_S) and an AP table.
#
# Usage: bash tools/run_demo.sh            (needs a ready environment: tools/setup_env.sh)
# Env:   PYTHON (default .venv/bin/python), CONFIG, WORK_DIR, DATA_DIR (must match the
#        config's data_root; default data/synthetic), FRESH=1 to discard a previous run
#        (otherwise an interrupted run resumes from its last checkpoint),
#        NUM_TRAIN/NUM_VAL/SEED for the data set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON=${PYTHON:-$root/.venv/bin/python}
CONFIG=${CONFIG:-configs/synthetic/faster_rcnn_lip_r18_fpn_synthetic.py}
WORK_DIR=${WORK_DIR:-work_dirs/demo_lip_r18_synthetic}
DATA_DIR=${DATA_DIR:-data/synthetic}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 2)}
# Sleeping (not spinning) OpenMP waits: on a busy machine spinning threads slow a training
# step down several-fold; on an idle one the cost is negligible.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
say() { printf '\n[run_demo] %s\n' "$*"; }
t0=$(date +%s)

if [ ! -x "$PYTHON" ]; then
  echo "[run_demo] $PYTHON not found: run 'bash tools/setup_env.sh' first (or set PYTHON)" >&2
  exit 2
fi

say "1/3 synthetic COCO set in $DATA_DIR (reused when its parameters match, else regenerated)"
"$PYTHON" tools/make_synthetic_coco.py --out "$DATA_DIR" --force \
  --num-train "${NUM_TRAIN:-400}" --num-val "${NUM_VAL:-100}" --seed "${SEED:-0}"
t1=$(date +%s)

if [ "${FRESH:-0}" = 1 ]; then rm -rf "$WORK_DIR"; fi
resume=()
if [ -f "$WORK_DIR/last_checkpoint" ]; then
  say "found $WORK_DIR/last_checkpoint: resuming (FRESH=1 starts over)"
  resume=(--resume)
fi
say "2/3 training $CONFIG on the CPU (log lines: epoch [i/N], eta, loss)"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "${resume[@]}"
t2=$(date +%s)

ckpt="$(cat "$WORK_DIR/last_checkpoint")"
say "3/3 COCO evaluation of $ckpt on the val split"
"$PYTHON" tools/test.py "$CONFIG" "$ckpt" --work-dir "$WORK_DIR/test" \
  --metrics-json "$WORK_DIR/test_metrics.json"
t3=$(date +%s)

say "done in $((t3 - t0)) s (data $((t1 - t0)) s, training $((t2 - t1)) s, evaluation $((t3 - t2)) s)"
say "metrics: $WORK_DIR/test_metrics.json, checkpoint: $ckpt"

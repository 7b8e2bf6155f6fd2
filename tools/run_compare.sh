#!/usr/bin/env bash
# The frozen small-object benchmark (protocol: docs/small_object_comparison.md): pooled backbones
# against the plain ResNet on the synthetic set, several training seeds each, paired deltas with
# 95 % t-intervals. Results go to docs/results/ (JSON, markdown table, PNG).
#
# Usage: bash tools/run_compare.sh    (needs a ready environment: tools/setup_env.sh)
# Every step is resumable: finished runs are skipped, an interrupted one resumes from its last
# checkpoint, so rerunning after a kill loses nothing. 28 runs, ~9 min each at depth 18 and
# ~17 min at depth 50 on 2 cores: about 5 h; the pretrained step adds 10 pretrainings (~3 min
# each) and 10 runs, about 2 h.
# Env: PYTHON (default .venv/bin/python), WORK_DIR (default work_dirs/compare), STEPS (default
#      "r18 families bottleneck adapool pretrained": which comparisons to run, in that order),
#      REPORT_ONLY=1 (rewrite the summaries from the finished runs, train nothing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON=${PYTHON:-$root/.venv/bin/python}
WORK_DIR=${WORK_DIR:-work_dirs/compare}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 2)}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ ! -x "$PYTHON" ]; then
  echo "[run_compare] $PYTHON not found: run 'bash tools/setup_env.sh' first (or set PYTHON)" >&2
  exit 2
fi
c=configs/synthetic
# The benchmark: data seed 0 (the demo's 400 training images) with a 500-image val split.
common=(--work-dir "$WORK_DIR" --data-seed 0 --num-val 500 --per-class --error-modes)
if [ "${REPORT_ONLY:-0}" = 1 ]; then common+=(--report-only); fi

# The pretraining recipe of the 'pretrained' step (docs/small_object_comparison.md): a 5000-image
# draw of the synthetic classification set, 4 epochs, the learning rate / 10 for the last one.
pre_data=data/synthetic_imagenet_5k
pre_results=docs/results/r18_vs_lip_r18_pretrained
pre_opts=("train_dataloader.dataset.data_root=$pre_data/" "val_dataloader.dataset.data_root=$pre_data/"
          "test_dataloader.dataset.data_root=$pre_data/" train_cfg.max_epochs=4
          train_cfg.val_interval=4 "param_scheduler.1.milestones=[3]"
          default_hooks.checkpoint.interval=1)

# pretrain NAME CLS_CONFIG SEED: WORK_DIR/pretrain/NAME/seedSEED/backbone.pth, unless it exists.
pretrain() {
  local dir="$WORK_DIR/pretrain/$1/seed$3"
  [ -f "$dir/backbone.pth" ] && return 0
  mkdir -p "$dir"
  echo "[run_compare] pretraining $1 seed $3 (log: $dir/train.log)"
  "$PYTHON" tools/train.py "$c/$2" --work-dir "$dir" --resume --cfg-options \
    "randomness.seed=$3" "${pre_opts[@]}" > "$dir/train.log" 2>&1 || {
    echo "[run_compare] pretraining $1 seed $3 failed: see $dir/train.log" >&2; return 1; }
  "$PYTHON" tools/convert_checkpoint.py "$dir/epoch_4.pth" "$dir/backbone.pth.part" --force \
    > "$dir/convert.log" 2>&1 || {
    echo "[run_compare] converting $1 seed $3 failed: see $dir/convert.log" >&2; return 1; }
  mv "$dir/backbone.pth.part" "$dir/backbone.pth"
}

# finished JSON SEED NAME...: every NAME's run of SEED is in the summary JSON or the work dir.
finished() {
  local json=$1 seed=$2; shift 2
  "$PYTHON" - "$json" "$WORK_DIR" "$seed" "$@" <<'PY'
import json, os, sys
path, work_dir, seed, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
try:
    with open(path) as f:
        runs = json.load(f).get('runs') or {}
except (OSError, ValueError):
    runs = {}
sys.exit(0 if all(seed in (runs.get(n) or {})
                  or os.path.isfile(os.path.join(work_dir, n, f'seed{seed}', 'metrics.json'))
                  for n in names) else 1)
PY
}

# compare_pretrained SEED...: the pretrained comparison over these seeds.
compare_pretrained() {
  "$PYTHON" tools/compare_backbones.py "$c/faster_rcnn_r18_fpn_synthetic_pretrained.py" \
    "$c/faster_rcnn_lip_r18_fpn_synthetic_pretrained.py" --names R18-pre LIP-R18-pre \
    --seeds "$@" "${common[@]}" --cfg-options \
    "model.backbone.init_cfg.checkpoint={work_dir}/pretrain/{name}/seed{seed}/backbone.pth" \
    --json "$pre_results.json" --plot "$pre_results.png"
}

rc=0
for step in ${STEPS:-r18 families bottleneck adapool pretrained}; do
  case $step in
    r18)  # primary comparison: LIP-R18 against R18, 5 seeds
      "$PYTHON" tools/compare_backbones.py "$c/faster_rcnn_r18_fpn_synthetic.py" \
        "$c/faster_rcnn_lip_r18_fpn_synthetic.py" --names R18 LIP-R18 --seeds 0 1 2 3 4 \
        "${common[@]}" --json docs/results/r18_vs_lip_r18.json \
        --plot docs/results/r18_vs_lip_r18.png || rc=1 ;;
    families)  # every depth-18 family against R18, 3 seeds (R18/LIP-R18 runs are shared)
      "$PYTHON" tools/compare_backbones.py "$c/faster_rcnn_r18_fpn_synthetic.py" \
        "$c/faster_rcnn_lip_r18_fpn_synthetic.py" "$c/faster_rcnn_softpool_r18_fpn_synthetic.py" \
        "$c/faster_rcnn_maxent_r18_fpn_synthetic.py" "$c/faster_rcnn_gaussian_r18_fpn_synthetic.py" \
        --names R18 LIP-R18 SoftPool-R18 MaxEnt-R18 Gaussian-R18 --seeds 0 1 2 \
        "${common[@]}" --json docs/results/r18_families.json \
        --plot docs/results/r18_families.png || rc=1 ;;
    bottleneck)  # the papers' Bottleneck design at depth 50, widths / 4, 3 seeds
      "$PYTHON" tools/compare_backbones.py "$c/faster_rcnn_r50_w16_fpn_synthetic.py" \
        "$c/faster_rcnn_lip_r50_w16_fpn_synthetic.py" --names R50-w16 LIP-R50-w16 \
        --seeds 0 1 2 "${common[@]}" --json docs/results/r50_w16_vs_lip.json \
        --plot docs/results/r50_w16_vs_lip.png || rc=1 ;;
    adapool)  # adaPool (added after the first three were frozen), 3 seeds; R18 runs are shared
      "$PYTHON" tools/compare_backbones.py "$c/faster_rcnn_r18_fpn_synthetic.py" \
        "$c/faster_rcnn_adapool_r18_fpn_synthetic.py" --names R18 AdaPool-R18 --seeds 0 1 2 \
        "${common[@]}" --json docs/results/r18_vs_adapool_r18.json \
        --plot docs/results/r18_vs_adapool_r18.png || rc=1 ;;
    pretrained)  # the one principled change: both depth-18 backbones pretrained, 5 seeds
      # Seed by seed, so that a partial sweep already holds complete pairs; each seed's backbones
      # are pretrained with that seed, then the comparison is updated with the seeds so far.
      if [ "${REPORT_ONLY:-0}" != 1 ]; then
        "$PYTHON" tools/make_synthetic_imagenet.py --out "$pre_data" --num-train-per-class 1000 \
          --num-val-per-class 100 || { rc=1; continue; }
      fi
      ready=()
      compared=0
      for s in 0 1 2 3 4; do
        if [ "${REPORT_ONLY:-0}" != 1 ] && ! finished "$pre_results.json" "$s" R18-pre LIP-R18-pre; then
          pretrain R18-pre r18_cls_synthetic.py "$s" &&
            pretrain LIP-R18-pre lip_r18_cls_synthetic.py "$s" || { rc=1; break; }
          ready+=("$s")
          [ ${#ready[@]} -lt 2 ] && continue
          compare_pretrained "${ready[@]}" || rc=1
          compared=1
        else
          # Finished seeds (in the committed summary or the work dir) need no backbones: their
          # runs are restored, and every later comparison includes them so none is dropped.
          ready+=("$s")
        fi
      done
      if [ $compared = 0 ] && [ ${#ready[@]} -ge 2 ]; then compare_pretrained "${ready[@]}" || rc=1; fi ;;
    *) echo "[run_compare] unknown step '$step' (accepted: r18, families, bottleneck, adapool, pretrained)" >&2
       exit 2 ;;
  esac
done
exit $rc

#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment on a CPU-only machine.
# Safe to rerun: every step is skipped when what it installs is already there.
# Usage: bash tools/setup_env.sh [VENV_DIR]   (default: .venv in the repository root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${LIP_DET_VENV:-$root/.venv}}"
py="${PYTHON:-python3}"
say() { printf '[setup_env] %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
pip_q() { "$vpy" -m pip install --disable-pip-version-check -q "$@"; }
have() { "$vpy" - "$@" <<'PY'
import importlib.metadata as m, sys
name, ver = sys.argv[1], sys.argv[2]
try:
    sys.exit(0 if m.version(name) == ver else 1)
except m.PackageNotFoundError:
    sys.exit(1)
PY
}

say "build tools: pip, setuptools>=77,<82 (mmcv's setup and mmengine need pkg_resources), wheel, ninja"
pip_q --upgrade 'pip>=24' 'setuptools>=77,<82' wheel ninja

if have torch 2.13.0+cpu || have torch 2.13.0; then
  say "torch 2.13.0 already installed"
else
  say "installing torch==2.13.0 (CPU build)"
  pip_q -r "$root/requirements/torch.txt"
fi

say "installing build-time numpy and runtime helpers"
pip_q 'numpy' 'opencv-python-headless' 'mmengine==0.10.7'

if have mmcv 2.1.0; then
  say "mmcv 2.1.0 already installed"
else
  say "building mmcv==2.1.0 with CPU ops from source (20-25 min on 2 cores the first time; pip caches the wheel)"
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$vpy" -m pip install --disable-pip-version-check --no-build-isolation mmcv==2.1.0
fi

say "installing mmdet, pycocotools and test requirements"
pip_q -r "$root/requirements/runtime.txt" -r "$root/requirements/tests.txt"

# Rebuilding the extension takes minutes: skip it when this checkout is already installed
# editable and lip_det/_C is newer than every source it is built from.
if "$vpy" - "$root" <<'PY'
import glob, os, sys, importlib.util
root = sys.argv[1]
spec = importlib.util.find_spec('lip_det')
if spec is None or os.path.dirname(os.path.abspath(spec.origin)) != os.path.join(root, 'lip_det'):
    sys.exit(1)
libs = glob.glob(os.path.join(root, 'lip_det', '_C*.so'))
srcs = [f for pat in ('csrc/**/*.h', 'csrc/**/*.cpp', 'csrc/**/*.cu', 'setup.py')
        for f in glob.glob(os.path.join(root, pat), recursive=True)]
sys.exit(0 if libs and min(map(os.path.getmtime, libs)) > max(map(os.path.getmtime, srcs)) else 1)
PY
then
  say "lip-det already installed from $root with an up-to-date extension"
else
  say "installing lip-det (editable; builds the CPU extension, a few minutes)"
  "$vpy" -m pip install --disable-pip-version-check -q --no-build-isolation -e "$root"
fi

"$vpy" - <<'PY'
import torch, mmcv, mmdet, mmengine
import lip_det
from mmcv.ops import nms  # noqa: F401  (proves mmcv was built with ops)
print(f"[setup_env] ready: torch {torch.__version__}, mmcv {mmcv.__version__}, "
      f"mmdet {mmdet.__version__}, mmengine {mmengine.__version__}, "
      f"lip_det {lip_det.__version__} (fused ops: {lip_det.ops.fused_available()})")
PY

#!/usr/bin/env bash
# Compile the fused operators (csrc/) against a CUDA build of torch with nvcc, without a GPU.
#
# Creates, once, a separate virtual environment (default .venv-cuda) holding torch==2.14.1 (cu130)
# *without* its NVIDIA runtime wheels: only its headers and libraries are needed to compile and
# link, so the install is ~1.2 GB and half a minute instead of 5.4 GB. Then compiles every
# csrc/ops/*/*.cu with nvcc -std=c++20 (the flags torch.utils.cpp_extension uses), every
# csrc/**/*.cpp with g++ against the same headers, and links lip_det/_C as a shared library.
# Any compile or link error exits non-zero.
#
# Environment: LIPDET_CUDA_VENV (venv path), LIPDET_CUDA_TORCH (torch version, default 2.14.1),
# NVCC (compiler, default: nvcc on PATH, else /usr/local/cuda/bin/nvcc), LIPDET_CUDA_ARCHS
# (space-separated SM numbers, default "80"), MAX_JOBS (parallel compiles, default 2),
# PYTHON (interpreter for the venv, default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIPDET_CUDA_VENV:-$ROOT/.venv-cuda}"
TORCH_VERSION="${LIPDET_CUDA_TORCH:-2.14.1}"
ARCHS="${LIPDET_CUDA_ARCHS:-80}"
JOBS="${MAX_JOBS:-2}"
PY="${PYTHON:-python3}"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
OUT="$ROOT/build/cuda-check"

[ -x "$NVCC" ] || { echo "check_cuda_build: nvcc not found (set NVCC)" >&2; exit 2; }
if [ -z "${CUDA_HOME:-}" ]; then  # nvcc may be a wrapper script: look for the toolkit's runtime
  for d in "$(dirname "$(readlink -f "$NVCC")")/.." /usr/local/cuda; do
    if [ -e "$d/include/cuda_runtime.h" ]; then CUDA_HOME="$(cd "$d" && pwd)"; break; fi
  done
fi
[ -n "${CUDA_HOME:-}" ] || { echo "check_cuda_build: CUDA toolkit not found (set CUDA_HOME)" >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
installed="$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null || true)"
if [ "$installed" != "$TORCH_VERSION" ]; then
  echo "check_cuda_build: installing torch==$TORCH_VERSION (headers and libraries only) into $VENV"
  "$VENV/bin/pip" install --quiet --no-deps "torch==$TORCH_VERSION"
fi

TORCH_DIR="$("$VENV/bin/python" -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('torch').origin))")"
PY_INC="$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")"
PY_LIB="$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))")"
PY_LDLIB="python$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_config_var('LDVERSION'))")"
grep -Eq "^cuda(: [^=]*)? = '[0-9]" "$TORCH_DIR/version.py" || {
  echo "check_cuda_build: $TORCH_DIR is not a CUDA build of torch" >&2; exit 2; }

INCLUDES=(-I"$ROOT/csrc" -I"$TORCH_DIR/include" -I"$TORCH_DIR/include/torch/csrc/api/include" -I"$PY_INC" -I"$CUDA_HOME/include")
DEFINES=(-DTORCH_API_INCLUDE_EXTENSION_H -DTORCH_EXTENSION_NAME=_C -D_GLIBCXX_USE_CXX11_ABI=1 -DWITH_CUDA)
GENCODE=()
for a in $ARCHS; do GENCODE+=("-gencode=arch=compute_${a},code=sm_${a}"); done

rm -rf "$OUT"
mkdir -p "$OUT"
echo "check_cuda_build: nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), torch $TORCH_VERSION, archs: $ARCHS"

compile() {  # src
  local src="$1" obj="$OUT/$(echo "$1" | tr '/' '_').o"
  if [[ "$src" == *.cu ]]; then
    "$NVCC" -std=c++20 -O3 -c "$ROOT/$src" -o "$obj" "${INCLUDES[@]}" "${DEFINES[@]}" "${GENCODE[@]}" \
      -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ \
      -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr -Xcompiler -fPIC -Werror all-warnings \
      -diag-suppress 20012,20014 2>&1 | sed "s|^|[$src] |"
  else
    g++ -std=c++20 -O3 -fPIC -fno-math-errno -fno-trapping-math -fopenmp -c "$ROOT/$src" -o "$obj" \
      "${INCLUDES[@]}" "${DEFINES[@]}" 2>&1 | grep -v 'Wc++20-extensions\|^In file included\|^  *from\|bit-fields only\|^ *[0-9]* | \|^ *| *^' | sed "s|^|[$src] |" || true
  fi
  [ -s "$obj" ] || { echo "check_cuda_build: FAILED to compile $src" >&2; return 1; }
}
export -f compile
export NVCC ROOT OUT

cd "$ROOT"
mapfile -t SOURCES < <(ls csrc/*.cpp csrc/cpu/*.cpp csrc/ops/*/*.cpp csrc/ops/*/*.cu)
start=$(date +%s)
status=0
pids=()
for src in "${SOURCES[@]}"; do
  compile "$src" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || { echo "check_cuda_build: compile errors" >&2; exit 1; }

# --no-undefined: every symbol our objects use must resolve in this torch / CUDA / Python.
g++ -shared -fopenmp -Wl,--no-undefined -o "$OUT/_C.so" "$OUT"/*.o -L"$TORCH_DIR/lib" -L"$CUDA_HOME/lib64" \
  -L"$PY_LIB" -lc10 -ltorch -ltorch_cpu -ltorch_python -lc10_cuda -ltorch_cuda -lcudart -l"$PY_LDLIB"
echo "check_cuda_build: OK, ${#SOURCES[@]} sources compiled and linked in $(( $(date +%s) - start )) s -> $OUT/_C.so"

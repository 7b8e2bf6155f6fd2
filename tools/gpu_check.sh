#!/usr/bin/env bash
# The fused CUDA kernels on a real GPU, in one prepared run for a machine lent for minutes: build
# lip_det._C in place with its CUDA kernels, check they are registered, run the CUDA device tests,
# the op benchmark on the GPU, the CUDA emulation tests and, if time is left, the pooling-op tests;
# then print one summary.
#
#   bash tools/gpu_check.sh [OUTDIR]        (OUTDIR: default $OUT, else build/gpu-check)
#
# Needs a Python with a CUDA build of torch, nvcc, pytest and hypothesis; no network, no
# OpenMMLab. Logs, JUnit reports, the benchmark table and summary.txt go to OUTDIR.
#
# Environment:
#   PYTHON                interpreter (default: python, else python3)
#   GPU_CHECK_BUDGET_S    seconds for the whole run (default 480); each step's timeout is cut so
#                         that the steps after it keep their share
#   GPU_CHECK_ALLOW_CPU=1 without a GPU, dry-run the pipeline on the CPU instead of refusing: no
#                         build (the extension already built is used), the CUDA tests skip, a
#                         subset of the other tests, a few seconds of CPU benchmark
#   GPU_CHECK_SKIP_BUILD=1  keep the lip_det/_C already built
#   LIP_DET_CUDA_EXAMPLES factor on the CUDA tests' hypothesis example counts (default 1)
#
# Steps that would start with too little of the budget left are skipped; the last two (emulation
# and pooling-op tests, which also run on any CPU) may also run out of it: "timeout", not failed.
# Exit status: 0 when no step failed, 1 when one did, 2 without a GPU (unless
# GPU_CHECK_ALLOW_CPU=1).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
OUTDIR="${1:-${OUT:-$ROOT/build/gpu-check}}"
if ! mkdir -p "$OUTDIR"; then echo "gpu_check: cannot create $OUTDIR" >&2; exit 1; fi
OUTDIR="$(cd "$OUTDIR" && pwd)"
BUDGET="${GPU_CHECK_BUDGET_S:-480}"
START=$SECONDS
PY="${PYTHON:-$(command -v python || command -v python3 || echo python3)}"
PY="$(command -v "$PY" || echo "$PY")"
# Console scripts installed next to the interpreter (a venv's ninja) without activating it.
PATH="$(dirname "$PY"):$PATH"
export PATH
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
SUMMARY="$OUTDIR/summary.txt"
# nproc honours OMP_NUM_THREADS, which a caller may have set low for its own reasons.
NCPU="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"

STEPS=()
FAILED=0
TESTS_P=0 TESTS_F=0 TESTS_E=0 TESTS_S=0

say() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }
left() { echo $((BUDGET - (SECONDS - START))); }
# Timeout for a step: at most $1 s, and no more than leaves $2 s of the budget to later steps,
# but at least $3 s (default 1) even if that eats into their share.
cap() {
  local t=$(($(left) - $2))
  [ "$t" -gt "$1" ] && t=$1
  [ "$t" -lt "${3:-1}" ] && t=${3:-1}
  echo "$t"
}
has_ninja() {  # as torch.utils.cpp_extension sees it (PATH, or next to the interpreter)
  "$PY" -c 'from torch.utils.cpp_extension import is_ninja_available as f; raise SystemExit(not f())' 2>/dev/null
}
record() {  # step status seconds detail
  STEPS+=("$(printf '%-12s %-8s %5ss  %s' "$1" "$2" "$3" "$4")")
  if [ "$2" = failed ]; then FAILED=1; fi
  say "$1: $2 ${4:+($4)}"
}

STEP_SECS=0
# run_step NAME LIMIT LOG CMD...: run CMD under `timeout` (its whole process group), output to LOG;
# on failure show the end of LOG here, since only the console may come back.
run_step() {
  local name=$1 limit=$2 log=$3 rc t0=$SECONDS
  shift 3
  say "$name: start (timeout ${limit}s) -> ${log#"$OUTDIR"/}"
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  STEP_SECS=$((SECONDS - t0))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "TIMED OUT after ${limit}s" >>"$log"; fi
  if [ $rc -ne 0 ]; then tail -n 25 "$log" | sed 's/^/    | /'; fi
  return $rc
}

# "passed P failed F errors E skipped S" of a JUnit report, also added to the totals;
# JUNIT_DEVICE_PASSED: how many of the passed tests are in test_cuda_device.py.
JUNIT_COUNTS="" JUNIT_DEVICE_PASSED=0
junit_counts() {
  local counts
  counts="$("$PY" - "$1" <<'PY' 2>/dev/null
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ('tests', 'failures', 'errors', 'skipped')}
device = sum(1 for tc in root.iter('testcase') if 'test_cuda_device' in tc.get('classname', '')
             and not any(c.tag in ('failure', 'error', 'skipped') for c in tc))
print(n['tests'] - n['failures'] - n['errors'] - n['skipped'], n['failures'], n['errors'], n['skipped'], device)
PY
)" || counts=""
  if [ -z "$counts" ]; then JUNIT_COUNTS="no test report (crashed or timed out)"; return 1; fi
  read -r p f e s JUNIT_DEVICE_PASSED <<<"$counts"
  TESTS_P=$((TESTS_P + p)) TESTS_F=$((TESTS_F + f)) TESTS_E=$((TESTS_E + e)) TESTS_S=$((TESTS_S + s))
  JUNIT_COUNTS="passed $p, failed $f, errors $e, skipped $s"
}

write_summary() {
  local verdict=OK
  [ $FAILED -ne 0 ] && verdict=FAILED
  {
    echo "gpu_check summary ($(date -u +%FT%TZ), $((SECONDS - START)) s of a ${BUDGET} s budget)"
    echo "  $MODE_LINE"
    printf '  %s\n' "${STEPS[@]}"
    echo "  tests (all steps): passed $TESTS_P, failed $TESTS_F, errors $TESTS_E, skipped $TESTS_S"
    echo "  benchmark table: ${BENCH_TABLE:-none}"
    echo "  logs: $OUTDIR"
    echo "overall: $verdict"
  } >"$SUMMARY"
  echo
  cat "$SUMMARY"
}

# ----------------------------------------------------------------------------- (a) versions
say "output directory $OUTDIR, budget ${BUDGET}s, python $PY"
INFO="$OUTDIR/info.txt"
{
  echo "host $(hostname), $NCPU cores, $(date -u +%FT%TZ)"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1
  else
    echo "nvidia-smi: not found"
  fi
  NVCC_BIN="$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })"
  NVCC_VERSION="$([ -n "${NVCC_BIN:-}" ] && "$NVCC_BIN" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "nvcc: ${NVCC_BIN:-not found} ${NVCC_VERSION:+release $NVCC_VERSION}"
  echo "ninja: $(command -v ninja || echo 'not found')"
  timeout 120 "$PY" - <<'PY' 2>&1
import sys
import torch
print(f'python {sys.version.split()[0]}, torch {torch.__version__}, built with CUDA {torch.version.cuda}, '
      f'cuDNN {torch.backends.cudnn.version()}')
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f'cuda:{i} {p.name}, capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, '
              f'{p.multi_processor_count} SMs')
else:
    print('torch.cuda.is_available(): False')
for mod in ('pytest', 'hypothesis', 'triton', 'setuptools'):
    try:
        print(f'{mod} {__import__(mod).__version__}')
    except Exception as exc:
        print(f'{mod}: {type(exc).__name__}: {exc}')
PY
} >"$INFO" 2>&1
sed 's/^/    /' "$INFO"

GPU="$(timeout 120 "$PY" - <<'PY' 2>/dev/null
import torch
if torch.cuda.is_available():
    print('%d.%d' % torch.cuda.get_device_capability())
    print(f'{torch.cuda.get_device_name()} | torch {torch.__version__} | CUDA {torch.version.cuda}')
PY
)"
CAP="$(sed -n 1p <<<"$GPU")"
if [ -n "$CAP" ]; then
  DRY=0
  MODE_LINE="GPU: $(sed -n 2p <<<"$GPU"), capability $CAP"
elif [ "${GPU_CHECK_ALLOW_CPU:-0}" = 1 ]; then
  DRY=1
  MODE_LINE="DRY RUN on the CPU (no GPU; GPU_CHECK_ALLOW_CPU=1): nothing about CUDA was tested"
  say "no GPU: dry run on the CPU (GPU_CHECK_ALLOW_CPU=1)"
else
  MODE_LINE="no GPU: torch.cuda.is_available() is False for $PY (GPU_CHECK_ALLOW_CPU=1 dry-runs on the CPU)"
  say "$MODE_LINE"
  record gpu failed 0 "no CUDA device visible to torch"
  write_summary
  exit 2
fi

# ----------------------------------------------------------------------------- (b) build
BUILD_LOG="$OUTDIR/build.log"
if [ $DRY = 1 ]; then
  record build skipped 0 "dry run: using the lip_det/_C already built, if any"
elif [ "${GPU_CHECK_SKIP_BUILD:-0}" = 1 ]; then
  record build skipped 0 "GPU_CHECK_SKIP_BUILD=1"
else
  if [ -z "${CUDA_HOME:-}" ] && [ -n "${NVCC_BIN:-}" ]; then
    # nvcc on PATH may be a wrapper or a symlink outside the toolkit: torch would take its
    # parent directory for CUDA_HOME. Look for the toolkit's headers instead.
    for d in "$(dirname "$(readlink -f "$NVCC_BIN")")/.." /usr/local/cuda; do
      if [ -e "$d/include/cuda_runtime.h" ]; then CUDA_HOME="$(cd "$d" && pwd)"; export CUDA_HOME; break; fi
    done
  fi
  # A machine kept warm between runs keeps build/ (ninja rebuilds only what changed) and the
  # last lip_det/_C: drop the latter, so that a failed build cannot leave old kernels to test.
  rm -f lip_det/_C.*.so lip_det/_C.so
  JOBS="${MAX_JOBS:-$NCPU}"
  if has_ninja; then NINJA=ninja; else NINJA="parallel distutils (no ninja)"; fi
  if run_step build "$(cap 300 210 60)" "$BUILD_LOG" \
      env FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$CAP" MAX_JOBS="$JOBS" "$PY" tools/build_inplace.py; then
    record build ok "$STEP_SECS" \
      "$NINJA, MAX_JOBS=$JOBS, TORCH_CUDA_ARCH_LIST=$CAP, CUDA_HOME=${CUDA_HOME:-torch default}"
  else
    record build failed "$STEP_SECS" "see build.log"
  fi
fi

# Every lip_det op must have a CUDA kernel, and one must run, before the tests are worth their time.
if run_step verify "$(cap 90 150 30)" "$OUTDIR/verify.log" env GPU_CHECK_DRY="$DRY" "$PY" - <<'PY'
import os
import sys

import torch

import lip_det.ops
from lip_det.ops import _ext, reference

dry = os.environ['GPU_CHECK_DRY'] == '1'
print('lip_det.ops backend:', lip_det.ops.backend())
if not _ext.available():
    sys.exit(f'lip_det._C does not load: {_ext.load_error()}')
import lip_det._C
print('extension:', lip_det._C.__file__)
names = sorted(n for n in torch._C._dispatch_get_all_op_names() if n.startswith('lip_det::'))
missing = [n for n in names if not torch._C._dispatch_has_kernel_for_dispatch_key(n, 'CUDA')]
print(f'{len(names)} ops: {", ".join(n.split("::")[1] for n in names)}')
if dry:
    print(f'dry run: {len(names) - len(missing)} of {len(names)} ops have CUDA kernels (not required)')
    sys.exit(0)
if not names or missing:
    sys.exit(f'ops without a CUDA kernel: {missing or "no lip_det ops at all"}')
x = torch.randn(2, 3, 17, 19, device='cuda', dtype=torch.float64)
logit = torch.randn_like(x) * 5
y = lip_det.ops.lip_pool2d(x, logit, 3, 2, 1)
ref = reference.lip_pool2d(x, logit, (3, 3), (2, 2), (1, 1))
torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-10)
print(f'all {len(names)} ops have CUDA kernels; lip_pool2d on {torch.cuda.get_device_name()} equals the reference')
PY
then
  record verify ok "$STEP_SECS" "$(tail -n 1 "$OUTDIR/verify.log")"
else
  record verify failed "$STEP_SECS" "see verify.log"
fi

# ----------------------------------------------------------------------------- (c) tests
PYTEST=("$PY" -m pytest -p no:cacheprovider -ra --durations=25 --durations-min=0.5)
# tests/conftest.py must load without OpenMMLab; if it does not here, run without it, with its
# hypothesis profile (no deadline, bounded examples) given by a plugin instead.
PROBE_LOG="$OUTDIR/conftest_probe.log"
probe() {
  timeout 90 "${PYTEST[@]}" -q "$@" tests/ops/test_cuda_device.py::test_table_lists_every_op >>"$PROBE_LOG" 2>&1
}
CONFTEST_ARGS=()
if ! probe && probe --noconftest; then
  PLUGIN_DIR="$(mktemp -d)"
  cat >"$PLUGIN_DIR/gpu_check_profile.py" <<'PY'
import os

from hypothesis import HealthCheck, settings

settings.register_profile('ci', deadline=None, max_examples=60, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))
PY
  export PYTHONPATH="$PLUGIN_DIR${PYTHONPATH:+:$PYTHONPATH}"
  CONFTEST_ARGS=(--noconftest -p gpu_check_profile)
  say "tests/conftest.py does not load here (conftest_probe.log): running with --noconftest"
fi

# A step left without time: an optional one is skipped; a required one, on a GPU, has failed
# (what it checks went unchecked).
not_run_status() { if [ "$1" = 1 ] || [ "$DRY" = 1 ]; then echo skipped; else echo failed; fi; }

# test_step NAME LIMIT MIN_START OPTIONAL [extra pytest args and test paths]: a step with less than
# MIN_START seconds is skipped; an OPTIONAL one (it runs on any CPU too) that then runs out of
# time is reported as a timeout, not a failure.
test_step() {
  local name=$1 limit=$2 min_start=$3 optional=$4 rc
  shift 4
  if [ "$limit" -lt "$min_start" ]; then
    record "$name" "$(not_run_status "$optional")" 0 "the ${BUDGET}s budget leaves it ${limit}s, it needs ${min_start}s"
    return
  fi
  run_step "$name" "$limit" "$OUTDIR/$name.log" "${PYTEST[@]}" "${CONFTEST_ARGS[@]}" \
    --junitxml="$OUTDIR/$name.xml" "$@"
  rc=$?
  JUNIT_DEVICE_PASSED=0
  junit_counts "$OUTDIR/$name.xml"
  if [ "$optional" = 1 ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
    record "$name" timeout "$STEP_SECS" "optional step ran out of the budget: ${limit}s"
  elif [ $rc -ne 0 ]; then
    record "$name" failed "$STEP_SECS" "$JUNIT_COUNTS; pytest exit $rc"
  elif [ "$name" = cuda-tests ] && [ $DRY = 0 ] && [ "$JUNIT_DEVICE_PASSED" -le 1 ]; then
    # Only the table check ran: everything that needs the GPU skipped, which here is a failure.
    record "$name" failed "$STEP_SECS" "$JUNIT_COUNTS; the CUDA tests skipped (see -ra in the log)"
  else
    record "$name" ok "$STEP_SECS" "$JUNIT_COUNTS"
  fi
}

# GPU-only results first (device tests, then the benchmark); the emulation and pooling-op tests
# run on any CPU and come last, as time allows.
test_step cuda-tests "$(cap 240 90)" 30 0 tests/ops/test_cuda_device.py \
  tests/ops/test_fused_integration.py::test_cuda_matches_cpu

# ----------------------------------------------------------------------------- (d) benchmark
BENCH_LOG="$OUTDIR/benchmark.log"
if [ $DRY = 1 ]; then
  BENCH_ARGS=(--device cpu --downscale 8 --repeat 1 --shapes lip_stem --methods lip soft)
  BENCH_TABLE="$OUTDIR/benchmark_ops_cpu.txt"
else
  BENCH_ARGS=(--device cuda --repeat 3)
  BENCH_TABLE="$OUTDIR/benchmark_ops_cuda.txt"
fi
BENCH_LIMIT="$(cap 150 0)"
if [ "$BENCH_LIMIT" -lt 30 ]; then
  record benchmark "$(not_run_status 0)" 0 "the ${BUDGET}s budget leaves it ${BENCH_LIMIT}s, it needs 30s"
  BENCH_TABLE=""
else
  # The table is the benchmark's stdout; its stderr (warnings, profiler chatter) goes to the log.
  # shellcheck disable=SC2016  # "$1" and "$@" belong to the inner shell
  if run_step benchmark "$BENCH_LIMIT" "$BENCH_LOG" bash -c '"${@:2}" >"$1"' _ "$BENCH_TABLE" \
      "$PY" tools/benchmark_ops.py "${BENCH_ARGS[@]}" --json "${BENCH_TABLE%.txt}.json"; then
    record benchmark ok "$STEP_SECS" "table $BENCH_TABLE"
  else
    tail -n 5 "$BENCH_TABLE" >>"$BENCH_LOG" 2>/dev/null
    BENCH_TABLE=""
    record benchmark failed "$STEP_SECS" "see benchmark.log"
  fi
fi

# ----------------------------------------------------------------------------- (c, cont.) CPU-side tests
DRY_EMU=() DRY_POOL=()
if [ $DRY = 1 ]; then
  # Plumbing only: one test of each file (the emulation one still builds its extension).
  DRY_EMU=(-k test_half_types) DRY_POOL=(-k gradcheck)
fi
if has_ninja; then
  test_step emulation "$(cap 150 0)" 60 1 tests/ops/test_cuda_emulation.py "${DRY_EMU[@]}"
else
  record emulation skipped 0 "no ninja: torch.utils.cpp_extension.load cannot build the emulation"
fi
test_step pooling-ops "$(cap 150 0)" 60 1 tests/ops/test_pooling_ops.py "${DRY_POOL[@]}"

# ----------------------------------------------------------------------------- (e) summary
write_summary
exit $FAILED

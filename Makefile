# One entry point per job; every target sets up the environment first (idempotent, fast when ready).
VENV ?= .venv
PY := $(VENV)/bin/python
export LIP_DET_VENV := $(abspath $(VENV))
# Sleeping OpenMP waits: with the default spinning, 2-thread CPU training slows several-fold
# whenever anything else shares the 2 cores (tests run subprocesses side by side).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo compare test test-fast cuda-check bench

setup:
	bash tools/setup_env.sh $(VENV)

# Main job: synthetic COCO set -> train the small LIP Faster R-CNN on the CPU -> COCO table.
demo: setup
	bash tools/run_demo.sh

# The small-object benchmark: pooled backbones vs plain ResNet over several seeds (~5 h on
# 2 cores, resumable: rerun to continue). Protocol and results: docs/small_object_comparison.md.
compare: setup
	bash tools/run_compare.sh

# Whole test suite, as CI runs it (includes compiling the CUDA kernels with nvcc).
test: setup cuda-check
	$(PY) -m pytest -ra

test-fast: setup
	$(PY) -m pytest -ra -m "not slow"

cuda-check:
	bash tools/check_cuda_build.sh

bench: setup
	$(PY) tools/benchmark_ops.py
	$(PY) tools/benchmark_backbones.py

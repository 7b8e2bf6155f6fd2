// The CUDA backend (csrc/cuda/pool_cuda.cu) compiled as host C++ (csrc/cuda/emulation.h) and
// registered as the operator library lip_det_cuda_emulation on the CPU; built and loaded by
// tests/ops/test_cuda_emulation.py together with csrc/ops.cpp (schemas and shared helpers).
#define LIPDET_CUDA_EMULATION 1
#include "cuda/pool_cuda.cu"

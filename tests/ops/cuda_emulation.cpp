// The CUDA kernels of LIP, SoftPool, Max-Entropy (csrc/ops/weighted_pool/weighted_pool_cuda.cu)
// and Gaussian pooling (csrc/ops/gauss_pool/gauss_pool_cuda.cu) compiled as host C++
// (csrc/cuda/emulation.h) and
// registered as the operator library lip_det_cuda_emulation on the CPU; built and loaded by
// tests/ops/test_cuda_emulation.py together with the host sources that define the schemas.
#define LIPDET_CUDA_EMULATION 1
#include "ops/weighted_pool/weighted_pool_cuda.cu"
#include "ops/gauss_pool/gauss_pool_cuda.cu"

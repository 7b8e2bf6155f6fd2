// adaPool's CUDA kernels (csrc/ops/ada_pool/ada_pool_cuda.cu) compiled as host C++
// (csrc/cuda/emulation.h) and registered as torch.ops.lip_det_ada_pool_emulation on the CPU.
#define LIPDET_CUDA_EMULATION 1
#include "ops/ada_pool/ada_pool_cuda.cu"

// Kernel launches shared by every CUDA kernel file: a grid-stride launch over n threads, and its
// host emulation (LIPDET_CUDA_EMULATION, cuda/emulation.h) for the CPU test suite.
//   LIPDET_LAUNCH(n, stream, kernel<...>)(args...);   inside the kernel: LIPDET_GRID_LOOP(i, n) { ... }
#pragma once

#ifdef LIPDET_CUDA_EMULATION
#include "cuda/emulation.h"
#else
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define LIPDET_LAUNCH(n, stream, ...) __VA_ARGS__<<<::lip_det::blocks_for(n), ::lip_det::kThreads, 0, stream>>>
#endif

#include <algorithm>
#include <cstdint>

namespace lip_det {

constexpr int kThreads = 256;

// Enough blocks for one thread per item, capped: the grid-stride loop covers the rest.
inline int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 20));
}

}  // namespace lip_det

#define LIPDET_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

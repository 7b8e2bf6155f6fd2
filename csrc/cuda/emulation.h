// Host stand-ins for the CUDA constructs the kernel files ops/<method>/<method>_cuda.cu use, so
// that tests/ops/*cuda_emulation.cpp can compile them as plain C++ and the CPU test suite can run
// their kernels (no GPU here).
//
// A launch runs every (block, thread) of the grid blocks_for(n) x kThreads one after another,
// with blockIdx/threadIdx set as on a GPU: the kernels' index arithmetic and grid-stride loops
// run as written. The kernels share no memory between threads (no __shared__, no atomics, no
// __syncthreads), so the serial order gives the same results as any GPU schedule. The grid
// indices are process globals: call the emulated ops from one thread at a time (tests only).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

struct LipdetEmulatedDim3 {
  unsigned int x = 0, y = 0, z = 0;
};
inline LipdetEmulatedDim3 blockIdx, threadIdx, blockDim{1, 1, 1}, gridDim{1, 1, 1};

namespace c10 {
namespace cuda {
struct CUDAGuard {
  explicit CUDAGuard(c10::Device) {}
};
struct CUDAStream {};
inline CUDAStream getCurrentCUDAStream() { return {}; }
}  // namespace cuda
}  // namespace c10

#define C10_CUDA_KERNEL_LAUNCH_CHECK() \
  do {                                 \
  } while (0)

namespace lip_det {
namespace emulation {

template <typename Kernel>
struct Launch {
  int64_t blocks, threads;
  Kernel kernel;
  template <typename... Args>
  void operator()(Args... args) const {
    gridDim = {static_cast<unsigned int>(blocks), 1, 1};
    blockDim = {static_cast<unsigned int>(threads), 1, 1};
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t t = 0; t < threads; ++t) {
        blockIdx.x = static_cast<unsigned int>(b);
        threadIdx.x = static_cast<unsigned int>(t);
        kernel(args...);
      }
  }
};

template <typename Kernel>
Launch<Kernel> launch(int64_t blocks, int64_t threads, Kernel kernel) {
  return {blocks, threads, kernel};
}

}  // namespace emulation
}  // namespace lip_det

#define LIPDET_LAUNCH(n, stream, ...) (static_cast<void>(stream), ::lip_det::emulation::launch(::lip_det::blocks_for(n), ::lip_det::kThreads, __VA_ARGS__))

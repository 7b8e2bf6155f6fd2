// adaPool's CUDA kernels, on the window and pixel functions of ada_pool.h (the same ones the CPU
// kernels call). Forward: one thread per output. Backward, deterministic and without atomics:
// one thread per output recomputes its window's GradWindow and ∂L/∂β, then one thread per
// input pixel gathers ∂L/∂x over the windows that cover it. Half types accumulate in float32.
//
// tests/ops/ada_pool_cuda_emulation.cpp compiles this file as host C++ with
// LIPDET_CUDA_EMULATION (cuda/emulation.h walks each grid on one CPU thread).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "cuda/launch.h"
#include "ops/ada_pool/ada_pool.h"
#include "ops/ada_pool/ada_pool_ops.h"

namespace lip_det {
namespace ada_pool {
namespace {

using Shape = PlaneShape;

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ beta, Shape s,
                               int64_t total, scalar_t* __restrict__ y) {
  LIPDET_GRID_LOOP(idx, total) {
    const Index3 out_at = plane_index(s, idx % s.out_plane, true);
    const int64_t od = out_at.d, oh = out_at.h, ow = out_at.w;
    const Window<acc_t> w = window<acc_t>(x + (idx / s.out_plane) * s.in_plane, s.d, s.h, s.w, od, oh, ow);
    y[idx] = static_cast<scalar_t>(output(w, beta[idx]));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void grad_window_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ beta,
                                   const scalar_t* __restrict__ grad, Shape s, int64_t total,
                                   GradWindow<acc_t>* __restrict__ windows, acc_t* __restrict__ gbeta) {
  LIPDET_GRID_LOOP(idx, total) {
    const Index3 out_at = plane_index(s, idx % s.out_plane, true);
    const int64_t od = out_at.d, oh = out_at.h, ow = out_at.w;
    const scalar_t* xp = x + (idx / s.out_plane) * s.in_plane;
    const Window<acc_t> w = window<acc_t>(xp, s.d, s.h, s.w, od, oh, ow);
    const acc_t g = static_cast<acc_t>(grad[idx]);
    windows[idx] = grad_window(xp, s.d, s.h, s.w, od, oh, ow, w, g, beta[idx]);
    gbeta[idx] = g * (w.y_d - w.y_m);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void gather_kernel(const scalar_t* __restrict__ x, Shape s, int64_t total,
                              const GradWindow<acc_t>* __restrict__ windows, scalar_t* __restrict__ gx) {
  LIPDET_GRID_LOOP(idx, total) {
    const Index3 in_at = plane_index(s, idx % s.in_plane, false);
    const int64_t id = in_at.d, ih = in_at.h, iw = in_at.w;
    const acc_t xv = static_cast<acc_t>(x[idx]);
    gx[idx] = static_cast<scalar_t>(
        pixel_gather(xv, s.d, s.h, s.w, id, ih, iw, windows + (idx / s.in_plane) * s.out_plane));
  }
}

struct CudaBackend {
  static at::Tensor forward(const Call& c) {
    const c10::cuda::CUDAGuard guard(c.x.device());
    at::Tensor y = at::empty(c.g.out_shape, c.x.options());
    const int64_t total = y.numel();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.x.scalar_type(), "ada_pool_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      LIPDET_LAUNCH(total, stream, forward_kernel<scalar_t, acc_t>)(
          c.x.data_ptr<scalar_t>(), c.beta.data_ptr<acc_t>(), c.g.plane_shape(), total, y.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
  }

  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const Call& c) {
    const c10::cuda::CUDAGuard guard(c.x.device());
    const at::Tensor go = grad.to(c.x.scalar_type()).contiguous();
    const at::ScalarType acc = acc_type(c.x.scalar_type());
    const int64_t n_out = c.g.planes() * c.g.out_plane(), n_in = c.x.numel();
    at::Tensor gx = at::empty_like(c.x, at::MemoryFormat::Contiguous);
    at::Tensor gbeta = at::empty({c.g.planes(), c.g.out_plane()}, c.x.options().dtype(acc));
    at::Tensor windows = at::empty({n_out * 7}, c.x.options().dtype(acc));
    const Shape s = c.g.plane_shape();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.x.scalar_type(), "ada_pool_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      static_assert(sizeof(GradWindow<acc_t>) == 7 * sizeof(acc_t), "GradWindow must be 7 packed values");
      auto* gw = reinterpret_cast<GradWindow<acc_t>*>(windows.data_ptr<acc_t>());
      LIPDET_LAUNCH(n_out, stream, grad_window_kernel<scalar_t, acc_t>)(
          c.x.data_ptr<scalar_t>(), c.beta.data_ptr<acc_t>(), go.data_ptr<scalar_t>(), s, n_out, gw,
          gbeta.data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      LIPDET_LAUNCH(n_in, stream, gather_kernel<scalar_t, acc_t>)(c.x.data_ptr<scalar_t>(), s, n_in, gw,
                                                                  gx.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return {gx, gbeta};
  }
};

}  // namespace
}  // namespace ada_pool
}  // namespace lip_det

#ifdef LIPDET_CUDA_EMULATION
TORCH_LIBRARY(lip_det_ada_pool_emulation, m) {
  lip_det::ada_pool::define_ops(m);
}
TORCH_LIBRARY_IMPL(lip_det_ada_pool_emulation, CPU, m) {
  lip_det::ada_pool::Ops<lip_det::ada_pool::CudaBackend>::register_all(m);
}
#else
TORCH_LIBRARY_IMPL(lip_det, CUDA, m) {
  lip_det::ada_pool::Ops<lip_det::ada_pool::CudaBackend>::register_all(m);
}
#endif

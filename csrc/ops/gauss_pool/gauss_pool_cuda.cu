// CUDA kernels of Gaussian pooling, on the math of gauss_pool.h. The CPU kernels share its
// per-window results (gauss_finish, gauss_output, gauss_coef), not its window functions
// (gauss_window, gauss_pixel_gather: CUDA only): csrc/README.md.
//
// Forward: one thread per output. Backward without atomics, deterministic: a first kernel, one
// thread per output, recomputes each window's μ and the two gradient coefficients; a second, one
// thread per input pixel, gathers the gradient over exactly the windows that cover the pixel.
// Half types read and write their own dtype and accumulate in float32.
//
// tests/ops/cuda_emulation.cpp compiles this file as host C++ with LIPDET_CUDA_EMULATION
// (cuda/emulation.h: one thread walks each grid) so that the CPU tests run these kernels.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "cuda/launch.h"
#include "ops/gauss_pool/gauss_pool.h"
#include "ops/gauss_pool/gauss_pool_ops.h"

namespace lip_det {
namespace gauss_pool {
namespace {

using Shape = PlaneShape;

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ eta,
                               bool per_output, Shape s, int64_t total, scalar_t* __restrict__ y) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / s.out_plane;
    const Index3 out_at = plane_index(s, idx % s.out_plane, true);
    const int64_t od = out_at.d, oh = out_at.h, ow = out_at.w;
    const GaussWindow<acc_t> w = gauss_window<acc_t>(x + p * s.in_plane, s.d, s.h, s.w, od, oh, ow);
    y[idx] = static_cast<scalar_t>(gauss_output(w, per_output ? eta[idx] : eta[p]));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void stats_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ eta,
                             bool per_output, const scalar_t* __restrict__ grad, Shape s,
                             int64_t total, acc_t* __restrict__ coef_a, acc_t* __restrict__ coef_b,
                             acc_t* __restrict__ mean, acc_t* __restrict__ geta) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / s.out_plane;
    const Index3 out_at = plane_index(s, idx % s.out_plane, true);
    const int64_t od = out_at.d, oh = out_at.h, ow = out_at.w;
    const GaussWindow<acc_t> w = gauss_window<acc_t>(x + p * s.in_plane, s.d, s.h, s.w, od, oh, ow);
    const acc_t g = static_cast<acc_t>(grad[idx]);
    const GaussCoef<acc_t> c = gauss_coef(w, g, per_output ? eta[idx] : eta[p]);
    coef_a[idx] = c.a;
    coef_b[idx] = c.b;
    mean[idx] = w.mean;
    geta[idx] = g * w.sigma;
  }
}

template <typename scalar_t, typename acc_t>
__global__ void gather_kernel(const scalar_t* __restrict__ x, Shape s, int64_t total,
                              const acc_t* __restrict__ coef_a, const acc_t* __restrict__ coef_b,
                              const acc_t* __restrict__ mean, scalar_t* __restrict__ gx) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / s.in_plane;
    const Index3 in_at = plane_index(s, idx % s.in_plane, false);
    const int64_t id = in_at.d, ih = in_at.h, iw = in_at.w;
    const int64_t ob = p * s.out_plane;
    gx[idx] = static_cast<scalar_t>(gauss_pixel_gather(static_cast<acc_t>(x[idx]), s.d, s.h, s.w, id, ih,
                                                       iw, coef_a + ob, coef_b + ob, mean + ob));
  }
}

struct CudaBackend {
  static at::Tensor forward(const at::Tensor& x, const at::Tensor& eta, const Geometry& g) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    const WindowParam wp = window_param(eta, g, acc_type(x.scalar_type()));
    at::Tensor y = at::empty(g.out_shape, xc.options());
    const int64_t total = y.numel();
    const Shape s = g.plane_shape();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip_det_gauss_forward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      LIPDET_LAUNCH(total, stream, forward_kernel<scalar_t, acc_t>)(
          xc.data_ptr<scalar_t>(), wp.values.data_ptr<acc_t>(), wp.per_output, s, total, y.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
  }

  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                                           const at::Tensor& eta, const Geometry& g) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    const at::Tensor gc = grad.to(x.scalar_type()).contiguous();
    const at::ScalarType acc = acc_type(x.scalar_type());
    const WindowParam wp = window_param(eta, g, acc);
    const int64_t n_out = g.planes() * g.out_plane(), n_in = xc.numel();
    const auto acc_opts = xc.options().dtype(acc);
    at::Tensor ca = at::empty({n_out}, acc_opts), cb = at::empty({n_out}, acc_opts),
               mean = at::empty({n_out}, acc_opts), geta = at::empty({g.planes(), g.out_plane()}, acc_opts);
    at::Tensor gx = at::empty_like(xc, at::MemoryFormat::Contiguous);
    const Shape s = g.plane_shape();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip_det_gauss_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      LIPDET_LAUNCH(n_out, stream, stats_kernel<scalar_t, acc_t>)(
          xc.data_ptr<scalar_t>(), wp.values.data_ptr<acc_t>(), wp.per_output, gc.data_ptr<scalar_t>(), s, n_out,
          ca.data_ptr<acc_t>(), cb.data_ptr<acc_t>(), mean.data_ptr<acc_t>(), geta.data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      LIPDET_LAUNCH(n_in, stream, gather_kernel<scalar_t, acc_t>)(
          xc.data_ptr<scalar_t>(), s, n_in, ca.data_ptr<acc_t>(), cb.data_ptr<acc_t>(), mean.data_ptr<acc_t>(),
          gx.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return {gx, reduce_param_grad(wp.per_output ? geta : geta.sum(1), g, eta)};
  }
};

}  // namespace
}  // namespace gauss_pool
}  // namespace lip_det

#ifdef LIPDET_CUDA_EMULATION
TORCH_LIBRARY_FRAGMENT(lip_det_cuda_emulation, m) {
  lip_det::gauss_pool::define_ops(m);
}
TORCH_LIBRARY_IMPL(lip_det_cuda_emulation, CPU, m) {
  lip_det::gauss_pool::Ops<lip_det::gauss_pool::CudaBackend>::register_all(m);
}
#else
TORCH_LIBRARY_IMPL(lip_det, CUDA, m) {
  lip_det::gauss_pool::Ops<lip_det::gauss_pool::CudaBackend>::register_all(m);
}
#endif

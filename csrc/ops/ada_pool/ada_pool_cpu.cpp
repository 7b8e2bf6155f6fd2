// adaPool's CPU kernels: the window and pixel functions of ada_pool.h (the same ones the CUDA
// kernels call), parallel over outputs in the forward and over input pixels in the backward's
// gather, which needs no atomics and gives the same sums in every thread schedule.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "ops/ada_pool/ada_pool.h"
#include "ops/ada_pool/ada_pool_ops.h"

namespace lip_det {
namespace ada_pool {
namespace {

// Below this many outputs (or pixels) per task, at::parallel_for's overhead outweighs the work.
constexpr int64_t kGrain = 2048;

struct CpuBackend {
  static at::Tensor forward(const Call& c) {
    const Geometry& g = c.g;
    const PlaneShape shape = g.plane_shape();
    at::Tensor y = at::empty(g.out_shape, c.x.options());
    const int64_t op = g.out_plane(), ip = g.in_plane();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.x.scalar_type(), "ada_pool_cpu", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const scalar_t* x = c.x.data_ptr<scalar_t>();
      const acc_t* beta = c.beta.data_ptr<acc_t>();
      scalar_t* out = y.data_ptr<scalar_t>();
      at::parallel_for(0, g.planes() * op, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t idx = b; idx < e; ++idx) {
          const Index3 o = plane_index(shape, idx % op, true);
          const Window<acc_t> w = window<acc_t>(x + (idx / op) * ip, g.d, g.h, g.w, o.d, o.h, o.w);
          out[idx] = static_cast<scalar_t>(output(w, beta[idx]));
        }
      });
    });
    return y;
  }

  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const Call& c) {
    const Geometry& g = c.g;
    const PlaneShape shape = g.plane_shape();
    const at::Tensor go = grad.to(c.x.scalar_type()).contiguous();
    const at::ScalarType acc = acc_type(c.x.scalar_type());
    at::Tensor gx = at::empty_like(c.x, at::MemoryFormat::Contiguous);
    at::Tensor gbeta = at::empty({g.planes(), g.out_plane()}, c.x.options().dtype(acc));
    const int64_t op = g.out_plane(), ip = g.in_plane(), n_out = g.planes() * op;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.x.scalar_type(), "ada_pool_backward_cpu", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      static_assert(sizeof(GradWindow<acc_t>) == 7 * sizeof(acc_t), "GradWindow must be 7 packed values");
      at::Tensor windows = at::empty({n_out * 7}, c.x.options().dtype(acc));
      auto* gw = reinterpret_cast<GradWindow<acc_t>*>(windows.data_ptr<acc_t>());
      const scalar_t* x = c.x.data_ptr<scalar_t>();
      const scalar_t* gop = go.data_ptr<scalar_t>();
      const acc_t* beta = c.beta.data_ptr<acc_t>();
      acc_t* gb = gbeta.data_ptr<acc_t>();
      at::parallel_for(0, n_out, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t idx = b; idx < e; ++idx) {
          const Index3 o = plane_index(shape, idx % op, true);
          const scalar_t* xp = x + (idx / op) * ip;
          const Window<acc_t> w = window<acc_t>(xp, g.d, g.h, g.w, o.d, o.h, o.w);
          const acc_t gv = static_cast<acc_t>(gop[idx]);
          gw[idx] = grad_window(xp, g.d, g.h, g.w, o.d, o.h, o.w, w, gv, beta[idx]);
          gb[idx] = gv * (w.y_d - w.y_m);
        }
      });
      scalar_t* gxp = gx.data_ptr<scalar_t>();
      at::parallel_for(0, g.planes() * ip, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t idx = b; idx < e; ++idx) {
          const Index3 i = plane_index(shape, idx % ip, false);
          const acc_t xv = static_cast<acc_t>(x[idx]);
          gxp[idx] = static_cast<scalar_t>(
              pixel_gather(xv, g.d, g.h, g.w, i.d, i.h, i.w, gw + (idx / ip) * op));
        }
      });
    });
    return {gx, gbeta};
  }
};

}  // namespace
}  // namespace ada_pool
}  // namespace lip_det

TORCH_LIBRARY_IMPL(lip_det, CPU, m) {
  lip_det::ada_pool::Ops<lip_det::ada_pool::CpuBackend>::register_all(m);
}

// CPU kernels of Gaussian pooling, in the row layout of the other CPU kernels (cpu/row_args.h):
// the forward streams each output row's input rows once for Σx and Σx²; the backward recomputes
// them per row and scatters ∂L/∂x = a + b·(x − μ) plane by plane.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <vector>

#include "cpu/row_buffers.h"
#include "ops/gauss_pool/gauss_pool_ops.h"
#include "ops/gauss_pool/gauss_pool_rows.h"

namespace lip_det {
namespace gauss_pool {
namespace {

template <typename acc_t>
void forward_row(CpuIsa isa, const GaussRow<acc_t>& a) {
  LIPDET_ROWS_DISPATCH(isa, gauss_fwd_row(a))
}

template <typename acc_t>
void backward_row(CpuIsa isa, const GaussRow<acc_t>& a) {
  LIPDET_ROWS_DISPATCH(isa, gauss_bwd_row(a))
}

template <typename acc_t>
struct Scratch {
  RowBuffer<acc_t> x, sum_x, sum_x2, grad_x, grad_eta, coef_a, count;
  std::vector<int64_t> rows;
  Scratch(const Geometry& g, const RowLayout& rl, bool backward) {
    const int64_t R = g.d.k * g.h.k, OW = g.w.out;
    x.resize(R * rl.size());
    sum_x.resize(OW);
    sum_x2.resize(OW);
    count.resize(OW);
    rows.resize(R);
    for (int64_t o = 0; o < OW; ++o) count[o] = acc_t(win_end(g.w, o) - win_begin(g.w, o));
    if (backward) {
      grad_x.resize(R * rl.size());
      grad_eta.resize(OW);
      coef_a.resize(OW);
    }
  }
  GaussRow<acc_t> load(CpuIsa isa, const Geometry& g, const RowLayout& rl, const acc_t* xp, int64_t od, int64_t oh) {
    const int64_t R = window_rows(g, od, oh, rows.data());
    for (int64_t r = 0; r < R; ++r)
      load_row(isa, rl, xp + rows[r], x.data() + r * rl.size(), acc_t(0));
    GaussRow<acc_t> a{};
    a.rows = R;
    a.row_stride = rl.size();
    a.phase_stride = rl.J;
    a.k = rl.k;
    a.s = rl.s;
    a.out_w = g.w.out;
    a.x = x.data();
    a.count = count.data();
    a.sum_x = sum_x.data();
    a.sum_x2 = sum_x2.data();
    a.grad_x = grad_x.data();
    a.grad_eta = grad_eta.data();
    a.coef_a = coef_a.data();
    return a;
  }
};

struct CpuBackend {
  static at::Tensor forward(const at::Tensor& x, const at::Tensor& eta, const Geometry& g);
  static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                                     const at::Tensor& eta, const Geometry& g);
};

at::Tensor CpuBackend::forward(const at::Tensor& x, const at::Tensor& eta, const Geometry& g) {
  const at::ScalarType acc = acc_type(x.scalar_type());
  const at::Tensor xa = x.to(acc).contiguous();
  const WindowParam wp = window_param(eta, g, acc);
  at::Tensor out = empty_for_kernel(g.out_shape, xa.options());
  AT_DISPATCH_FLOATING_TYPES(acc, "lip_det_gauss_forward", [&] {
    const RowLayout rl(g.w);
    const CpuIsa isa = cpu_isa();
    const int64_t rows_per_plane = g.d.out * g.h.out;
    const scalar_t* xp = xa.data_ptr<scalar_t>();
    const scalar_t* ep = wp.values.data_ptr<scalar_t>();
    scalar_t* yp = out.data_ptr<scalar_t>();
    const int64_t work = g.w.out * g.d.k * g.h.k * g.w.k;
    at::parallel_for(0, g.planes() * rows_per_plane, std::max<int64_t>(1, 16384 / std::max<int64_t>(work, 1)),
                     [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s(g, rl, false);
      for (int64_t t = begin; t < end; ++t) {
        const int64_t p = t / rows_per_plane, rr = t % rows_per_plane;
        GaussRow<scalar_t> a = s.load(isa, g, rl, xp + p * g.in_plane(), rr / g.h.out, rr % g.h.out);
        const int64_t orow = p * g.out_plane() + rr * g.w.out;
        a.eta = wp.per_output ? ep + orow : ep + p;
        a.eta_stride = wp.per_output ? 1 : 0;
        a.y = yp + orow;
        forward_row(isa, a);
      }
    });
  });
  return out.to(x.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> CpuBackend::backward(const at::Tensor& grad, const at::Tensor& x,
                                                        const at::Tensor& eta, const Geometry& g) {
  const at::ScalarType acc = acc_type(x.scalar_type());
  const at::Tensor xa = x.to(acc).contiguous();
  const at::Tensor go = grad.to(acc).contiguous();
  const WindowParam wp = window_param(eta, g, acc);
  at::Tensor gx = empty_for_kernel(xa.sizes(), xa.options());  // every element written by PlaneGradRows
  at::Tensor geta = wp.per_output ? at::empty({g.planes(), g.out_plane()}, xa.options())
                                  : at::empty({g.planes()}, xa.options());
  AT_DISPATCH_FLOATING_TYPES(acc, "lip_det_gauss_backward", [&] {
    const RowLayout rl(g.w);
    const CpuIsa isa = cpu_isa();
    const int64_t S = rl.size();
    const scalar_t* xp = xa.data_ptr<scalar_t>();
    const scalar_t* ep = wp.values.data_ptr<scalar_t>();
    const scalar_t* gp = go.data_ptr<scalar_t>();
    scalar_t* gxp = gx.data_ptr<scalar_t>();
    scalar_t* gep = geta.data_ptr<scalar_t>();
    at::parallel_for(0, g.planes(), 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s(g, rl, true);
      PlaneGradRows<scalar_t> out(g, rl);
      for (int64_t p = begin; p < end; ++p) {
        out.start(gxp + p * g.in_plane(), nullptr);
        scalar_t plane_geta = 0;
        for (int64_t od = 0; od < g.d.out; ++od)
          for (int64_t oh = 0; oh < g.h.out; ++oh) {
            GaussRow<scalar_t> a = s.load(isa, g, rl, xp + p * g.in_plane(), od, oh);
            std::fill(s.grad_x.begin(), s.grad_x.begin() + a.rows * S, scalar_t(0));
            const int64_t orow = p * g.out_plane() + (od * g.h.out + oh) * g.w.out;
            a.eta = wp.per_output ? ep + orow : ep + p;
            a.eta_stride = wp.per_output ? 1 : 0;
            a.grad = gp + orow;
            backward_row(isa, a);
            for (int64_t r = 0; r < a.rows; ++r) out.put(isa, s.rows[r], s.grad_x.data() + r * S, nullptr);
            if (wp.per_output) std::copy(s.grad_eta.begin(), s.grad_eta.begin() + g.w.out, gep + orow);
            else for (int64_t o = 0; o < g.w.out; ++o) plane_geta += s.grad_eta[o];
          }
        out.finish();
        if (!wp.per_output) gep[p] = plane_geta;
      }
    });
  });
  return {gx.to(x.scalar_type()), reduce_param_grad(geta, g, eta)};
}

}  // namespace
}  // namespace gauss_pool
}  // namespace lip_det

TORCH_LIBRARY_IMPL(lip_det, CPU, m) {
  lip_det::gauss_pool::Ops<lip_det::gauss_pool::CpuBackend>::register_all(m);
}

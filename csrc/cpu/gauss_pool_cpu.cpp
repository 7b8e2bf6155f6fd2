// CPU kernels of Gaussian pooling, in the row layout of weighted_pool_cpu.cpp: the forward
// streams each output row's input rows once for Σx and Σx²; the backward recomputes them per
// row and scatters ∂L/∂x = a + b·(x − μ) plane by plane.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <vector>

#include "cpu/cpu_backend.h"

namespace lip_det {
namespace {

template <typename acc_t>
void gauss_fwd_row(CpuIsa isa, const GaussRow<acc_t>& a) {
  LIPDET_ROWS_DISPATCH(isa, gauss_fwd_row(a))
}

template <typename acc_t>
void gauss_bwd_row(CpuIsa isa, const GaussRow<acc_t>& a) {
  LIPDET_ROWS_DISPATCH(isa, gauss_bwd_row(a))
}

template <typename acc_t>
struct GaussScratch {
  RowBuffer<acc_t> X, s1, s2, GX, geta, cnt;
  std::vector<int64_t> rows;
  GaussScratch(const Geometry& g, const RowLayout& rl, bool backward) {
    const int64_t R = g.d.k * g.h.k, OW = g.w.out;
    X.resize(R * rl.size());
    s1.resize(OW);
    s2.resize(OW);
    cnt.resize(OW);
    rows.resize(R);
    for (int64_t o = 0; o < OW; ++o) cnt[o] = acc_t(win_end(g.w, o) - win_begin(g.w, o));
    if (backward) {
      GX.resize(R * rl.size());
      geta.resize(2 * OW);
    }
  }
  GaussRow<acc_t> load(CpuIsa isa, const Geometry& g, const RowLayout& rl, const acc_t* xp, int64_t od, int64_t oh) {
    const int64_t R = window_rows(g, od, oh, rows.data());
    for (int64_t r = 0; r < R; ++r)
      load_row(isa, rl, xp + rows[r], X.data() + r * rl.size(), acc_t(0), kLoadCopy);
    GaussRow<acc_t> a{};
    a.R = R;
    a.S = rl.size();
    a.J = rl.J;
    a.k = rl.k;
    a.s = rl.s;
    a.OW = g.w.out;
    a.X = X.data();
    a.cnt = cnt.data();
    a.s1 = s1.data();
    a.s2 = s2.data();
    a.GX = GX.data();
    a.geta = geta.data();
    return a;
  }
};

}  // namespace

at::Tensor CpuBackend::gauss_forward(const at::Tensor& x, const at::Tensor& eta, const Geometry& g) {
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
      GaussScratch<scalar_t> s(g, rl, false);
      for (int64_t t = begin; t < end; ++t) {
        const int64_t p = t / rows_per_plane, rr = t % rows_per_plane;
        GaussRow<scalar_t> a = s.load(isa, g, rl, xp + p * g.in_plane(), rr / g.h.out, rr % g.h.out);
        const int64_t orow = p * g.out_plane() + rr * g.w.out;
        a.eta = wp.per_output ? ep + orow : ep + p;
        a.eta_stride = wp.per_output ? 1 : 0;
        a.y = yp + orow;
        gauss_fwd_row(isa, a);
      }
    });
  });
  return out.to(x.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> CpuBackend::gauss_backward(const at::Tensor& grad,
                                                              const at::Tensor& x,
                                                              const at::Tensor& eta,
                                                              const Geometry& g) {
  TORCH_CHECK_VALUE(grad.sizes() == at::IntArrayRef(g.out_shape), "grad_out must have shape ",
                    g.out_shape, ", got ", grad.sizes());
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
      GaussScratch<scalar_t> s(g, rl, true);
      PlaneGradRows<scalar_t> out(g, rl);
      for (int64_t p = begin; p < end; ++p) {
        out.start(gxp + p * g.in_plane(), nullptr);
        scalar_t plane_geta = 0;
        for (int64_t od = 0; od < g.d.out; ++od)
          for (int64_t oh = 0; oh < g.h.out; ++oh) {
            GaussRow<scalar_t> a = s.load(isa, g, rl, xp + p * g.in_plane(), od, oh);
            std::fill(s.GX.begin(), s.GX.begin() + a.R * S, scalar_t(0));
            const int64_t orow = p * g.out_plane() + (od * g.h.out + oh) * g.w.out;
            a.eta = wp.per_output ? ep + orow : ep + p;
            a.eta_stride = wp.per_output ? 1 : 0;
            a.g = gp + orow;
            gauss_bwd_row(isa, a);
            for (int64_t r = 0; r < a.R; ++r) out.put(isa, s.rows[r], s.GX.data() + r * S, nullptr);
            if (wp.per_output) std::copy(s.geta.begin(), s.geta.begin() + g.w.out, gep + orow);
            else for (int64_t o = 0; o < g.w.out; ++o) plane_geta += s.geta[o];
          }
        out.finish();
        if (!wp.per_output) gep[p] = plane_geta;
      }
    });
  });
  return {gx.to(x.scalar_type()), reduce_param_grad(geta, g, eta)};
}

}  // namespace lip_det

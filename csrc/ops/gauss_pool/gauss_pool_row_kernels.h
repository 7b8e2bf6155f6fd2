// Gaussian pooling's CPU row kernels, compiled once per instruction set (cpu/row_kernels.h):
// unit-stride passes over a row's outputs, tap by tap, on the per-window math of gauss_pool.h.
#include "ops/gauss_pool/gauss_pool.h"
#include "ops/gauss_pool/gauss_pool_rows.h"

namespace lip_det {
namespace gauss_pool {
namespace {

template <typename acc_t>
LIPDET_INLINE void window_sums(const GaussRow<acc_t>& a) {
  acc_t* __restrict s1 = a.sum_x;
  acc_t* __restrict s2 = a.sum_x2;
  for (int64_t o = 0; o < a.out_w; ++o) s1[o] = s2[o] = acc_t(0);
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const acc_t* __restrict xs = a.x + r * a.row_stride + (kk % a.s) * a.phase_stride + kk / a.s;
      for (int64_t o = 0; o < a.out_w; ++o) {
        s1[o] += xs[o];
        s2[o] += xs[o] * xs[o];
      }
    }
}

template <typename acc_t>
LIPDET_INLINE void forward_row(const GaussRow<acc_t>& a) {
  window_sums(a);
  acc_t* __restrict y = a.y;
  for (int64_t o = 0; o < a.out_w; ++o) {
    const GaussWindow<acc_t> w = gauss_finish(a.sum_x[o], a.sum_x2[o], a.count[o] * acc_t(a.rows));
    y[o] = gauss_output(w, a.eta[o * a.eta_stride]);
  }
}

// ∂L/∂x = a + b·(x − μ); μ and b overwrite the window sums, a goes to coef_a.
template <typename acc_t>
LIPDET_INLINE void backward_row(const GaussRow<acc_t>& a) {
  window_sums(a);
  acc_t* mean = a.sum_x;
  acc_t* coef_b = a.sum_x2;
  acc_t* coef_a = a.coef_a;
  for (int64_t o = 0; o < a.out_w; ++o) {
    const GaussWindow<acc_t> w = gauss_finish(a.sum_x[o], a.sum_x2[o], a.count[o] * acc_t(a.rows));
    const GaussCoef<acc_t> c = gauss_coef(w, a.grad[o], a.eta[o * a.eta_stride]);
    a.grad_eta[o] = a.grad[o] * w.sigma;
    mean[o] = w.mean;
    coef_a[o] = c.a;
    coef_b[o] = c.b;
  }
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const int64_t off = r * a.row_stride + (kk % a.s) * a.phase_stride + kk / a.s;
      const acc_t* __restrict xs = a.x + off;
      const acc_t* __restrict ma = mean;
      const acc_t* __restrict ca = coef_a;
      const acc_t* __restrict cb = coef_b;
      acc_t* __restrict gx = a.grad_x + off;
      for (int64_t o = 0; o < a.out_w; ++o) gx[o] += ca[o] + cb[o] * (xs[o] - ma[o]);
    }
}

}  // namespace
}  // namespace gauss_pool

namespace LIPDET_ROW_NS {
void gauss_fwd_row(const gauss_pool::GaussRow<float>& a) { gauss_pool::forward_row(a); }
void gauss_fwd_row(const gauss_pool::GaussRow<double>& a) { gauss_pool::forward_row(a); }
void gauss_bwd_row(const gauss_pool::GaussRow<float>& a) { gauss_pool::backward_row(a); }
void gauss_bwd_row(const gauss_pool::GaussRow<double>& a) { gauss_pool::backward_row(a); }
}  // namespace LIPDET_ROW_NS

}  // namespace lip_det

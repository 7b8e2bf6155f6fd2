// CPU backend: row-wise kernels over deinterleaved, padded copies of the input rows.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "cpu/row_args.h"
#include "pool_ops.h"

namespace lip_det {

struct CpuBackend {
  static at::Tensor weighted_forward(Weighted kind, const at::Tensor& x,
                                     const std::optional<at::Tensor>& logit,
                                     const std::optional<at::Tensor>& lam, const Geometry& g);
  static std::tuple<at::Tensor, at::Tensor> weighted_backward(
      Weighted kind, const at::Tensor& grad, const at::Tensor& x,
      const std::optional<at::Tensor>& logit, const std::optional<at::Tensor>& lam,
      const Geometry& g);
  static std::tuple<at::Tensor, at::Tensor> plane_stats(const at::Tensor& pre, double eps,
                                                        const Geometry& g);
  static at::Tensor gated_forward(const at::Tensor& x, const at::Tensor& pre, const PlaneNorm& norm,
                                  const Geometry& g);
  static GatedGrads gated_backward(const at::Tensor& grad, const at::Tensor& x,
                                   const at::Tensor& pre, const PlaneNorm& norm, const Geometry& g);
  static at::Tensor gauss_forward(const at::Tensor& x, const at::Tensor& eta, const Geometry& g);
  static std::tuple<at::Tensor, at::Tensor> gauss_backward(const at::Tensor& grad,
                                                           const at::Tensor& x,
                                                           const at::Tensor& eta,
                                                           const Geometry& g);
};

// at::empty for a tensor the kernels fill; large ones are backed by transparent huge pages
// where the OS allows (kernel_memory.cpp).
at::Tensor empty_for_kernel(at::IntArrayRef shape, const at::TensorOptions& options);

template <typename acc_t>
void load_row(CpuIsa isa, const RowLayout& rl, const acc_t* src, acc_t* dst, acc_t fill, int kind,
              const Gate<acc_t>& m = Gate<acc_t>{acc_t(1), acc_t(0), acc_t(1)}) {
  LIPDET_ROWS_DISPATCH(isa, load_row(rl, src, dst, fill, kind, m))
}

// Scatter a row-layout gradient back to an input row: dst += buf, or dst = buf when not
// `accumulate` (the row's first contribution; only valid when rl.covers).
template <typename acc_t>
void put_row(CpuIsa isa, const RowLayout& rl, const acc_t* buf, acc_t* dst, bool accumulate = true) {
  LIPDET_ROWS_DISPATCH(isa, put_row(rl, buf, dst, accumulate))
}

template <typename acc_t>
void norm_grad_plane(CpuIsa isa, int64_t n, const acc_t* pre, acc_t* g, acc_t scale, acc_t mean, acc_t rstd,
                     double* gweight, double* gbias) {
  LIPDET_ROWS_DISPATCH(isa, norm_grad_plane(n, pre, g, scale, mean, rstd, gweight, gbias))
}

template <typename acc_t>
acc_t weight_row(CpuIsa isa, int64_t n, const acc_t* L, const acc_t* X, acc_t* W, acc_t* XW,
                 const RowPrefetch& pf) {
  LIPDET_ROWS_DISPATCH(isa, weight_row(n, L, X, W, XW, pf))
}

template <typename acc_t>
void plane_moments(CpuIsa isa, int64_t n, const acc_t* v, double* mean, double* m2) {
  LIPDET_ROWS_DISPATCH(isa, plane_moments(n, v, mean, m2))
}

// The valid (d, h) input rows of output row (od, oh) as offsets into a plane.
inline int64_t window_rows(const Geometry& g, int64_t od, int64_t oh, int64_t* rows) {
  int64_t r = 0;
  for (int64_t d = win_begin(g.d, od); d < win_end(g.d, od); ++d)
    for (int64_t h = win_begin(g.h, oh); h < win_end(g.h, oh); ++h) rows[r++] = (d * g.h.in + h) * g.w.in;
  return r;
}

}  // namespace lip_det

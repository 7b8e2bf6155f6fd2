// Gaussian pooling's CPU row kernels: their arguments and their entry point in each instruction-
// set build (defined in gauss_pool_row_kernels.h, compiled by cpu/rows_<isa>.cpp).
#pragma once

#include <cstdint>

#include "cpu/row_args.h"

namespace lip_det {
namespace gauss_pool {

// One output row of Gaussian pooling over `rows` deinterleaved input rows (cpu/row_args.h:
// RowLayout), each `row_stride` entries apart in `x`.
template <typename acc_t>
struct GaussRow {
  int64_t rows, row_stride, phase_stride, k, s, out_w;
  const acc_t* x;
  const acc_t* count;  // valid columns of each output's window
  const acc_t* eta;    // per output (eta_stride 1) or per plane (eta_stride 0)
  int64_t eta_stride;
  acc_t *sum_x, *sum_x2;  // Σx and Σx² of each output's window
  acc_t* y;
  // backward only
  const acc_t* grad;
  acc_t* grad_x;    // row layout, rows × row_stride
  acc_t* grad_eta;  // out_w entries
  acc_t* coef_a;    // out_w entries of scratch: ∂L/∂x = a + b·(x − μ)
};

}  // namespace gauss_pool

#define LIPDET_DECLARE_GAUSS_ROWS(NS)                                     \
  namespace NS {                                                          \
  void gauss_fwd_row(const gauss_pool::GaussRow<float>& a);               \
  void gauss_fwd_row(const gauss_pool::GaussRow<double>& a);              \
  void gauss_bwd_row(const gauss_pool::GaussRow<float>& a);               \
  void gauss_bwd_row(const gauss_pool::GaussRow<double>& a);              \
  }
LIPDET_FOR_EACH_ROW_ISA(LIPDET_DECLARE_GAUSS_ROWS)
#undef LIPDET_DECLARE_GAUSS_ROWS

}  // namespace lip_det

// The CPU row kernels of LIP, SoftPool and Max-Entropy pooling: their arguments and their entry
// points in each instruction-set build (defined in weighted_pool_row_kernels.h, compiled by
// cpu/rows_<isa>.cpp), with the dispatch to the build cpu_isa() chose.
#pragma once

#include <cstdint>

#include "cpu/row_args.h"

namespace lip_det {

// How a tap's logit is formed: a logit tensor (LIP), λ·x with one λ per plane (SoftPool with
// λ = 1, Max-Ent), or λ·x with one λ per output window (Max-Ent [N, C, oH, oW]).
enum RowMode : int { kLogit = 0, kPlaneLam = 1, kOutLam = 2 };

// One output row of a weighted pooling over `rows` deinterleaved input rows (RowLayout), each
// `row_stride` entries long, their phases `phase_stride` apart.
template <typename acc_t>
struct RowArgs {
  int64_t rows, row_stride, phase_stride, k, s, out_w;
  const acc_t* const* x_rows;      // the input rows, deinterleaved, fill 0
  const acc_t* const* logit_rows;  // kLogit, kPlaneLam: their logits (λ·x for kPlaneLam), fill -inf
  const acc_t* mask;               // kOutLam: 0 at valid columns, -inf at padding (any row)
  const acc_t* lam_row;            // kOutLam: λ of each output of the row
  acc_t lam;                       // kPlaneLam: the plane's λ
  acc_t *peak, *den, *num;         // each output's window sums (see the kernels for their reuse)
  acc_t* y;                        // forward: output row
  // backward only
  const acc_t* grad;               // upstream gradient of the output row
  acc_t* tap_weights;              // kOutLam: every tap's weight, rows × k × out_w
  acc_t *grad_x, *grad_logit;      // row layout, rows × row_stride: ∂L/∂x, ∂L/∂logit
  acc_t* grad_lam;                 // out_w: each window's ∂L/∂λ
  // Shifted path (kLogit, kPlaneLam): per input row r its maximum logit row_max[r], the weights
  // weight_rows[r] = e^{L − row_max[r]} and x·weight in xweight_rows[r]; scratch of out_w entries
  // in grad_scaled and `exact` (the outputs whose window needs the exact window-max form, see
  // weighted_pool_cpu.cpp).
  const acc_t* const* weight_rows;
  const acc_t* const* xweight_rows;
  const acc_t* row_max;
  acc_t* grad_scaled;
  int64_t* exact;
  // The fused gate: grad_logit is chained through it (∂L/∂z = ∂L/∂logit · gate_slope) before
  // the scatter.
  bool gated;
  acc_t coeff;
};

// The per-plane gate of the fused LIP: logit = coeff·σ(scale·pre + shift), where scale and
// shift fold the plane's InstanceNorm (scale = γ·rstd, shift = β − scale·μ).
template <typename acc_t>
struct Gate {
  acc_t scale, shift, coeff;
};

// Memory to prefetch (into L2) while a row pass runs: `bytes` at a and at b (either may be null).
struct RowPrefetch {
  const void* a;
  const void* b;
  int64_t bytes;
};

#define LIPDET_DECLARE_WEIGHTED_ROWS(NS)                                         \
  namespace NS {                                                               \
  void weighted_fwd_row(int mode, const RowArgs<float>& a);                    \
  void weighted_fwd_row(int mode, const RowArgs<double>& a);                   \
  void weighted_bwd_row(int mode, bool glam, const RowArgs<float>& a);         \
  void weighted_bwd_row(int mode, bool glam, const RowArgs<double>& a);        \
  void norm_grad_plane(int64_t n, const float* pre, float* g, float scale, float mean, \
                       float rstd, double* gweight, double* gbias);            \
  void norm_grad_plane(int64_t n, const double* pre, double* g, double scale,  \
                       double mean, double rstd, double* gweight, double* gbias); \
  void load_gated_row(const RowLayout& rl, const float* pre, float* dst, float fill, \
                      const Gate<float>& m);                                   \
  void load_gated_row(const RowLayout& rl, const double* pre, double* dst,      \
                      double fill, const Gate<double>& m);                      \
  void plane_moments(int64_t n, const float* v, double* mean, double* m2);     \
  void plane_moments(int64_t n, const double* v, double* mean, double* m2);    \
  float weight_row(int64_t n, float* L, const float* X, const float* mask, float lam,    \
                   float* W, float* XW, const RowPrefetch& pf);                \
  double weight_row(int64_t n, double* L, const double* X, const double* mask,  \
                    double lam, double* W, double* XW, const RowPrefetch& pf); \
  }
LIPDET_FOR_EACH_ROW_ISA(LIPDET_DECLARE_WEIGHTED_ROWS)
#undef LIPDET_DECLARE_WEIGHTED_ROWS

template <typename acc_t>
void norm_grad_plane(CpuIsa isa, int64_t n, const acc_t* pre, acc_t* g, acc_t scale, acc_t mean, acc_t rstd,
                     double* gweight, double* gbias) {
  LIPDET_ROWS_DISPATCH(isa, norm_grad_plane(n, pre, g, scale, mean, rstd, gweight, gbias))
}

template <typename acc_t>
acc_t weight_row(CpuIsa isa, int64_t n, acc_t* L, const acc_t* X, const acc_t* mask, acc_t lam, acc_t* W,
                 acc_t* XW, const RowPrefetch& pf) {
  LIPDET_ROWS_DISPATCH(isa, weight_row(n, L, X, mask, lam, W, XW, pf))
}

// A row of the fused LIP's logits, gate(pre), deinterleaved like load_row: the gate is applied in
// the same pass as the copy.
template <typename acc_t>
void load_gated_row(CpuIsa isa, const RowLayout& rl, const acc_t* pre, acc_t* dst, acc_t fill,
                    const Gate<acc_t>& m) {
  LIPDET_ROWS_DISPATCH(isa, load_gated_row(rl, pre, dst, fill, m))
}

template <typename acc_t>
void plane_moments(CpuIsa isa, int64_t n, const acc_t* v, double* mean, double* m2) {
  LIPDET_ROWS_DISPATCH(isa, plane_moments(n, v, mean, m2))
}

}  // namespace lip_det

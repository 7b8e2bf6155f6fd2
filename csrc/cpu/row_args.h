// Arguments of the CPU row kernels and their per-instruction-set entry points.
//
// The row kernels (row_kernels.h) are compiled three times: rows_default.cpp for the baseline ISA,
// rows_avx2.cpp with AVX2+FMA and rows_avx512.cpp with AVX-512; cpu_isa() picks one at run time
// from the CPU's features, so one build runs on any x86-64 and uses the widest vectors it has.
#pragma once

#include <cstdint>

#include "pool_common.h"

namespace lip_det {

// The W axis of a window seen as `phases` unit-stride rows: tap kw of output ow reads phase
// kw % s at index ow + kw / s. Padding and ceil-mode overhang become explicit fill values, so
// the per-tap loops over ow have no bounds checks and vectorise.
// A phase holds `span` entries; phases are J apart, J rounded up to 16 entries so that every
// phase of a 64-byte aligned buffer starts on a cache line (unaligned vectors split lines).
struct RowLayout {
  int64_t W, s, p, k, span, J, phases;
  bool covers;  // every input column lies in some window: no gaps (s <= k), none after the last
  explicit RowLayout(const Dim& w)
      : W(w.in), s(w.s), p(w.p), k(w.k), span(w.out + (w.k - 1) / w.s), J((span + 15) / 16 * 16),
        phases(w.s < w.k ? w.s : w.k), covers(w.s <= w.k && (w.out - 1) * w.s - w.p + w.k >= w.in) {}
  int64_t size() const { return phases * J; }
};

// [j0, j1): indices of phase q, within its span, that map to input columns c = q + j*s - p
// inside [0, W).
// A static function, not a member: it is compiled into each instruction-set build of the
// row kernels and must not be merged across them by the linker.
static inline void row_valid(const RowLayout& rl, int64_t q, int64_t& j0, int64_t& j1) {
  const int64_t a = rl.p - q;
  j0 = a <= 0 ? 0 : (a + rl.s - 1) / rl.s;
  const int64_t b = rl.W - 1 + rl.p - q;
  j1 = b < 0 ? 0 : b / rl.s + 1;
  j0 = j0 < rl.span ? j0 : rl.span;
  j1 = j1 < rl.span ? j1 : rl.span;
  j1 = j1 > j0 ? j1 : j0;
}

// What a logit row holds at a valid column: the value, 0 (a validity mask), or LIP's fused gate
// coeff·σ(a·value + b) (a = scale, b = shift), all stored by load_row; or λ·value (kLoadScale),
// which weight_row forms from the value row instead.
enum LoadKind : int { kLoadCopy = 0, kLoadScale = 1, kLoadZero = 2, kLoadGate = 3 };

// The per-plane gate of the fused LIP: logit = coeff·σ(scale·pre + shift), where scale and
// shift fold the plane's InstanceNorm (scale = γ·rstd, shift = β − scale·μ).
template <typename acc_t>
struct Gate {
  acc_t scale, shift, coeff;
};

// How a tap's logit is formed: a logit tensor (LIP), λ·x with one λ per plane (SoftPool with
// λ = 1, Max-Ent), or λ·x with one λ per output window (Max-Ent [N, C, oH, oW]).
enum RowMode : int { kLogit = 0, kPlaneLam = 1, kOutLam = 2 };

// One output row of a weighted pooling over R deinterleaved input rows (RowLayout).
template <typename acc_t>
struct RowArgs {
  int64_t R, S, J, k, s, OW;
  const acc_t* const* Xr;  // the R input rows, deinterleaved, fill 0
  const acc_t* const* Lr;  // kLogit, kPlaneLam: their logits (λ·x for kPlaneLam), fill -inf
  const acc_t* mask;       // kOutLam: 0 at valid columns, -inf at padding (same layout, any row)
  const acc_t* lamrow;     // kOutLam: λ of each output of the row
  acc_t lam;            // kPlaneLam: the plane's λ
  acc_t *peak, *den, *num;
  acc_t* y;  // forward: output row
  // backward only
  const acc_t* g;
  acc_t *E, *GX, *GL, *glam;
  // Shifted path (kLogit, kPlaneLam): per input row r its maximum logit Mr[r], the weights
  // Wr[r] = e^{L − Mr[r]} and Xr·Wr in XWr[r]; scratch of OW entries in gdr and `exact` (the
  // outputs whose window needs the exact window-max form, see weighted_pool_cpu.cpp).
  const acc_t* const* Wr;
  const acc_t* const* XWr;
  const acc_t* Mr;
  acc_t* gdr;
  int64_t* exact;
  // The fused gate: GL is chained through it (∂L/∂z = ∂L/∂logit · gate_slope) before the scatter.
  bool gated;
  acc_t coeff;
};

// Memory to prefetch (into L2) while a row pass runs: `bytes` at a and at b (either may be null).
struct RowPrefetch {
  const void* a;
  const void* b;
  int64_t bytes;
};

#define LIPDET_DECLARE_ROW_KERNELS(NS)                                         \
  namespace NS {                                                               \
  void weighted_fwd_row(int mode, const RowArgs<float>& a);                    \
  void weighted_fwd_row(int mode, const RowArgs<double>& a);                   \
  void weighted_bwd_row(int mode, bool glam, const RowArgs<float>& a);         \
  void weighted_bwd_row(int mode, bool glam, const RowArgs<double>& a);        \
  void load_row(const RowLayout& rl, const float* src, float* dst, float fill, int kind,  \
                const Gate<float>& m);                                         \
  void load_row(const RowLayout& rl, const double* src, double* dst, double fill, int kind, \
                const Gate<double>& m);                                        \
  void norm_grad_plane(int64_t n, const float* pre, float* g, float scale, float mean, \
                       float rstd, double* gweight, double* gbias);            \
  void norm_grad_plane(int64_t n, const double* pre, double* g, double scale,  \
                       double mean, double rstd, double* gweight, double* gbias); \
  void plane_moments(int64_t n, const float* v, double* mean, double* m2);     \
  void plane_moments(int64_t n, const double* v, double* mean, double* m2);    \
  float weight_row(int64_t n, float* L, const float* X, const float* mask, float lam,    \
                   float* W, float* XW, const RowPrefetch& pf);                \
  double weight_row(int64_t n, double* L, const double* X, const double* mask,  \
                    double lam, double* W, double* XW, const RowPrefetch& pf); \
  void put_row(const RowLayout& rl, const float* buf, float* dst, bool accumulate);   \
  void put_row(const RowLayout& rl, const double* buf, double* dst, bool accumulate); \
  }

// X(namespace) for every instruction-set build of the row kernels: a method's row header
// declares its entry points in each with it.
#define LIPDET_FOR_EACH_ROW_ISA(X) X(rows_default) X(rows_avx2) X(rows_avx512)

LIPDET_FOR_EACH_ROW_ISA(LIPDET_DECLARE_ROW_KERNELS)

// Which build of the row kernels runs (cpu/cpu_isa.cpp): the best this CPU supports, or a lower
// one named by LIP_DET_CPU_ISA=default|avx2|avx512, decided once per process; the op
// lip_det::set_cpu_isa changes it.
enum class CpuIsa : int { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };
CpuIsa cpu_isa();

#define LIPDET_ROWS_DISPATCH(isa, call)                            \
  switch (isa) {                                                   \
    case ::lip_det::CpuIsa::kAvx512: return rows_avx512::call;     \
    case ::lip_det::CpuIsa::kAvx2: return rows_avx2::call;         \
    default: return rows_default::call;                            \
  }

}  // namespace lip_det

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

// load_row: an input row deinterleaved into the row layout, `fill` outside the valid columns;
// mask_row: 0 at the valid columns, `fill` elsewhere (a row's padding mask). A method that
// stores a function of the values instead (LIP's fused gate) builds its own loader on
// load_mapped (row_kernels.h).
#define LIPDET_DECLARE_ROW_KERNELS(NS)                                         \
  namespace NS {                                                               \
  void load_row(const RowLayout& rl, const float* src, float* dst, float fill);  \
  void load_row(const RowLayout& rl, const double* src, double* dst, double fill); \
  void mask_row(const RowLayout& rl, float* dst, float fill);                  \
  void mask_row(const RowLayout& rl, double* dst, double fill);                \
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

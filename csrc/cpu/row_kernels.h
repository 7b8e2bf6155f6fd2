// The CPU row kernels of one instruction-set build: included by rows_{default,avx2,avx512}.cpp
// with LIPDET_ROW_NS set; everything here has internal linkage so the builds never mix. This file
// holds what every method's kernels share (deinterleaving an input row into the row layout and
// scattering a gradient row back) and includes each method's row kernels.
//
// Each pass is a unit-stride loop over the outputs of a row (taps are read from deinterleaved
// rows, see RowLayout), calling the method's per-pixel math, so the compiler vectorises it, exp
// included (exp_nonpos is branch-free).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cpu/row_args.h"

#ifndef LIPDET_ROW_NS
#error "define LIPDET_ROW_NS before including row_kernels.h"
#endif

#define LIPDET_INLINE __attribute__((always_inline)) inline

namespace lip_det {
namespace {

// Deinterleave one input row (see RowLayout), storing map(value) at the valid columns and `fill`
// elsewhere; a constant stride lets the compiler vectorise the strided reads. With src null
// nothing is read (map() takes no argument then: a mask row).
template <typename acc_t, int64_t SC, typename Map>
LIPDET_INLINE void load_phases(const RowLayout& rl, const acc_t* __restrict src, acc_t* __restrict dst,
                               acc_t fill, Map map) {
  const int64_t s = SC > 0 ? SC : rl.s;
  for (int64_t q = 0; q < rl.phases; ++q) {
    int64_t j0, j1;
    row_valid(rl, q, j0, j1);
    acc_t* __restrict d = dst + q * rl.J;
    for (int64_t j = 0; j < j0; ++j) d[j] = fill;
    if constexpr (std::is_invocable_v<Map>) {
      for (int64_t j = j0; j < j1; ++j) d[j] = map();
    } else {
      const acc_t* __restrict sp = src + q - rl.p;
      for (int64_t j = j0; j < j1; ++j) d[j] = map(sp[j * s]);
    }
    for (int64_t j = j1; j < rl.J; ++j) d[j] = fill;
  }
}

// load_phases with the stride as a constant for the common strides 1 and 2.
template <typename acc_t, typename Map>
LIPDET_INLINE void load_mapped(const RowLayout& rl, const acc_t* src, acc_t* dst, acc_t fill, Map map) {
  if (rl.s == 1) load_phases<acc_t, 1>(rl, src, dst, fill, map);
  else if (rl.s == 2) load_phases<acc_t, 2>(rl, src, dst, fill, map);
  else load_phases<acc_t, 0>(rl, src, dst, fill, map);
}

// dst[c] += buf[q*J + j] for the valid columns (ADD), or dst[c] = buf[q*J + j]: a row
// gradient back to the input layout.
template <typename acc_t, int64_t SC, bool ADD>
LIPDET_INLINE void put_phases(const RowLayout& rl, const acc_t* __restrict buf, acc_t* __restrict dst) {
  const int64_t s = SC > 0 ? SC : rl.s;
  for (int64_t q = 0; q < rl.phases; ++q) {
    int64_t j0, j1;
    row_valid(rl, q, j0, j1);
    const acc_t* __restrict b = buf + q * rl.J;
    acc_t* __restrict dp = dst + q - rl.p;
    if constexpr (ADD)
      for (int64_t j = j0; j < j1; ++j) dp[j * s] += b[j];
    else
      for (int64_t j = j0; j < j1; ++j) dp[j * s] = b[j];
  }
}

template <typename acc_t, bool ADD>
void put_stride(const RowLayout& rl, const acc_t* buf, acc_t* dst) {
  if (rl.s == 1) put_phases<acc_t, 1, ADD>(rl, buf, dst);
  else if (rl.s == 2) put_phases<acc_t, 2, ADD>(rl, buf, dst);
  else put_phases<acc_t, 0, ADD>(rl, buf, dst);
}

template <typename acc_t>
void put_any(const RowLayout& rl, const acc_t* buf, acc_t* dst, bool accumulate) {
  if (accumulate) put_stride<acc_t, true>(rl, buf, dst);
  else put_stride<acc_t, false>(rl, buf, dst);
}

}  // namespace

namespace LIPDET_ROW_NS {
void load_row(const RowLayout& rl, const float* src, float* dst, float fill) {
  load_mapped(rl, src, dst, fill, [](float v) { return v; });
}
void load_row(const RowLayout& rl, const double* src, double* dst, double fill) {
  load_mapped(rl, src, dst, fill, [](double v) { return v; });
}
void mask_row(const RowLayout& rl, float* dst, float fill) {
  load_mapped(rl, static_cast<const float*>(nullptr), dst, fill, [] { return 0.0f; });
}
void mask_row(const RowLayout& rl, double* dst, double fill) {
  load_mapped(rl, static_cast<const double*>(nullptr), dst, fill, [] { return 0.0; });
}
void put_row(const RowLayout& rl, const float* buf, float* dst, bool accumulate) {
  put_any(rl, buf, dst, accumulate);
}
void put_row(const RowLayout& rl, const double* buf, double* dst, bool accumulate) {
  put_any(rl, buf, dst, accumulate);
}
}  // namespace LIPDET_ROW_NS

}  // namespace lip_det

// Every method's row kernels, in this instruction-set build.
#include "ops/gauss_pool/gauss_pool_row_kernels.h"
#include "ops/weighted_pool/weighted_pool_row_kernels.h"

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
// load_row applies LIP's gate while it deinterleaves (kLoadGate): a gated logit row is then
// formed in the same pass as its copy.
#include "ops/weighted_pool/weighted_pool.h"

#ifndef LIPDET_ROW_NS
#error "define LIPDET_ROW_NS before including row_kernels.h"
#endif

#define LIPDET_INLINE __attribute__((always_inline)) inline

namespace lip_det {
namespace {

// Deinterleave one input row (see RowLayout); a constant stride lets the compiler vectorise
// the strided reads. kLoadGate applies the gate m; λ·x rows (kLoadScale) are never loaded here,
// weight_row forms them from the X row.
template <typename acc_t, int64_t SC>
LIPDET_INLINE void load_phases(const RowLayout& rl, const acc_t* __restrict src, acc_t* __restrict dst,
                               acc_t fill, int kind, const Gate<acc_t>& m) {
  const int64_t s = SC > 0 ? SC : rl.s;
  const acc_t a = m.scale, b = m.shift, coeff = m.coeff;
  for (int64_t q = 0; q < rl.phases; ++q) {
    int64_t j0, j1;
    row_valid(rl, q, j0, j1);
    acc_t* __restrict d = dst + q * rl.J;
    const acc_t* __restrict sp = src + q - rl.p;
    for (int64_t j = 0; j < j0; ++j) d[j] = fill;
    if (kind == kLoadCopy)
      for (int64_t j = j0; j < j1; ++j) d[j] = sp[j * s];
    else if (kind == kLoadGate)
      for (int64_t j = j0; j < j1; ++j) d[j] = gate_logit(a * sp[j * s] + b, coeff);
    else
      for (int64_t j = j0; j < j1; ++j) d[j] = acc_t(0);
    for (int64_t j = j1; j < rl.J; ++j) d[j] = fill;
  }
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

template <typename acc_t>
void load_any(const RowLayout& rl, const acc_t* src, acc_t* dst, acc_t fill, int kind,
              const Gate<acc_t>& m) {
  if (rl.s == 1) load_phases<acc_t, 1>(rl, src, dst, fill, kind, m);
  else if (rl.s == 2) load_phases<acc_t, 2>(rl, src, dst, fill, kind, m);
  else load_phases<acc_t, 0>(rl, src, dst, fill, kind, m);
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
void load_row(const RowLayout& rl, const float* src, float* dst, float fill, int kind, const Gate<float>& m) {
  load_any(rl, src, dst, fill, kind, m);
}
void load_row(const RowLayout& rl, const double* src, double* dst, double fill, int kind,
              const Gate<double>& m) {
  load_any(rl, src, dst, fill, kind, m);
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

// The CPU row kernels of LIP, SoftPool and Max-Entropy pooling, compiled once per instruction
// set (cpu/row_kernels.h): unit-stride passes over a row's outputs, tap by tap, on the per-pixel
// math of weighted_pool.h. The shifted path (one exp per input pixel: weight_row, shifted_sums,
// the k3/s2 fast paths, the exact fallback) serves logits that do not depend on the window; the
// per-window-λ path (window_lam_sums) takes every tap's exp from its window's own peak; the
// plane statistics and the InstanceNorm backward serve the fused gate.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "ops/weighted_pool/weighted_pool.h"
#include "ops/weighted_pool/weighted_pool_rows.h"

namespace lip_det {
namespace {

// The per-tap loops take restrict parameters: GCC trusts restrict on parameters (also once
// inlined), not on local pointers, and without it versions or gives up on these loops.
// One tap's share of a pixel's gradient, by mode: ∂/∂x (with λ·∂/∂logit when the logit is λ·x
// for the window's λ `lam`), ∂/∂logit (LIP), and the window's ∂/∂λ.
template <typename acc_t, int M, bool GLAM>
LIPDET_INLINE void add_pixel_grad(const PixelGrad<acc_t>& pg, acc_t lam, acc_t xv, acc_t yo, acc_t& gx,
                                  acc_t* gl, acc_t& glam) {
  if constexpr (M == kLogit) {
    gx += pg.d;
    *gl += pg.t;
  } else {
    gx += pg.d + lam * pg.t;
  }
  if constexpr (GLAM) glam += pg.t * (xv - yo);
}

template <typename acc_t, int M, bool GLAM>
LIPDET_INLINE void tap_grad(int64_t n, const acc_t* __restrict lamrow, acc_t lam,
                            const acc_t* __restrict xs, const acc_t* __restrict e,
                            const acc_t* __restrict gd, const acc_t* __restrict y,
                            acc_t* __restrict gx, acc_t* __restrict gl, acc_t* __restrict glam) {
  acc_t unused = 0;
  for (int64_t o = 0; o < n; ++o) {
    const PixelGrad<acc_t> pg = wp_pixel_grad(gd[o], e[o], xs[o], y[o]);
    add_pixel_grad<acc_t, M, GLAM>(pg, M == kOutLam ? lamrow[o] : lam, xs[o], y[o], gx[o],
                                   M == kLogit ? gl + o : nullptr, GLAM ? glam[o] : unused);
  }
}

// ---- per-window λ (Max-Ent with λ of shape [N, C, oH, oW]): a pixel's logit λ_o·x differs
// between the windows that share it, so every tap takes its exp from its window's own peak.
// The mask row adds 0 at valid columns and −inf at padding.
template <typename acc_t>
LIPDET_INLINE void tap_peak(int64_t n, const acc_t* __restrict lamrow, const acc_t* __restrict xs,
                            const acc_t* __restrict mask, acc_t* __restrict peak) {
  for (int64_t o = 0; o < n; ++o) {
    const acc_t l = lamrow[o] * xs[o] + mask[o];
    peak[o] = l > peak[o] ? l : peak[o];
  }
}

template <typename acc_t, bool STORE_E>
LIPDET_INLINE void tap_exp(int64_t n, const acc_t* __restrict lamrow, const acc_t* __restrict xs,
                           const acc_t* __restrict mask, const acc_t* __restrict peak,
                           acc_t* __restrict den, acc_t* __restrict num, acc_t* __restrict e_out) {
  for (int64_t o = 0; o < n; ++o) {
    const acc_t e = wp_weight(lamrow[o] * xs[o] + mask[o], peak[o]);
    if constexpr (STORE_E) e_out[o] = e;
    den[o] += e;
    num[o] += e * xs[o];
  }
}

// Peak, den and num of every output of the row; with STORE_E the weights are kept for the backward.
template <typename acc_t, bool STORE_E>
LIPDET_INLINE void window_lam_sums(const RowArgs<acc_t>& a) {
  const int64_t OW = a.out_w;
  for (int64_t o = 0; o < OW; ++o) a.peak[o] = -std::numeric_limits<acc_t>::infinity();
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const int64_t off = (kk % a.s) * a.phase_stride + kk / a.s;
      tap_peak(OW, a.lam_row, a.x_rows[r] + off, a.mask + off, a.peak);
    }
  for (int64_t o = 0; o < OW; ++o) a.den[o] = a.num[o] = acc_t(0);
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const int64_t off = (kk % a.s) * a.phase_stride + kk / a.s;
      tap_exp<acc_t, STORE_E>(OW, a.lam_row, a.x_rows[r] + off, a.mask + off, a.peak, a.den, a.num,
                              STORE_E ? a.tap_weights + (r * a.k + kk) * OW : nullptr);
    }
}

template <typename acc_t>
LIPDET_INLINE void fwd_window_lam(const RowArgs<acc_t>& a) {
  window_lam_sums<acc_t, false>(a);
  for (int64_t o = 0; o < a.out_w; ++o) a.y[o] = wp_output(WeightedSums<acc_t>{a.peak[o], a.den[o], a.num[o]});
}

// Every tap's share of the gradient goes to grad_x (the row layout); the caller scatters it.
// num becomes y and den becomes upstream/den.
template <typename acc_t>
LIPDET_INLINE void bwd_window_lam(const RowArgs<acc_t>& a) {
  window_lam_sums<acc_t, true>(a);
  const int64_t OW = a.out_w;
  for (int64_t o = 0; o < OW; ++o) {
    const acc_t den = a.den[o];
    a.num[o] = wp_output(WeightedSums<acc_t>{a.peak[o], den, a.num[o]});
    a.den[o] = a.grad[o] / den;
    a.grad_lam[o] = acc_t(0);
  }
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const int64_t off = (kk % a.s) * a.phase_stride + kk / a.s, goff = r * a.row_stride + off;
      tap_grad<acc_t, kOutLam, true>(OW, a.lam_row, a.lam, a.x_rows[r] + off, a.tap_weights + (r * a.k + kk) * OW, a.den,
                                     a.num, a.grad_x + goff, nullptr, a.grad_lam);
    }
}

// Mean and Σ(v − mean)² of a plane, two passes (robust when |mean| >> std), double sums in
// independent lanes so that the reductions vectorise.
template <typename acc_t>
LIPDET_INLINE void moments_any(int64_t n, const acc_t* __restrict v, double* mean, double* m2) {
  constexpr int64_t kLanes = 16;
  double sum[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) sum[l] += v[i + l];
  double total = 0;
  for (; i < n; ++i) total += v[i];
  for (int64_t l = 0; l < kLanes; ++l) total += sum[l];
  const double mu = total / static_cast<double>(n);
  const acc_t m = static_cast<acc_t>(mu);
  double sq[kLanes] = {};
  for (i = 0; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const acc_t d = v[i + l] - m;
      sq[l] += d * d;
    }
  double tsq = 0;
  for (; i < n; ++i) {
    const acc_t d = v[i] - m;
    tsq += d * d;
  }
  for (int64_t l = 0; l < kLanes; ++l) tsq += sq[l];
  *mean = mu;
  *m2 = tsq;
}

// InstanceNorm's backward over one plane of n pixels: g holds ∂L/∂z (z = scale·pre + shift, the
// gate already chained in) and becomes ∂L/∂pre; returns the plane's ∂L/∂γ and ∂L/∂β (norm_grad).
template <typename acc_t>
LIPDET_INLINE void norm_grad_any(int64_t n, const acc_t* __restrict pre, acc_t* __restrict g, acc_t a,
                                 acc_t mean, acc_t rstd, double* gweight, double* gbias) {
  constexpr int64_t kLanes = 16;  // independent partial sums, so the reductions vectorise
  double sz[kLanes] = {}, sc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      sz[l] += g[i + l];
      sc[l] += g[i + l] * (pre[i + l] - mean);
    }
  double tz = 0, tc = 0;
  for (; i < n; ++i) {
    tz += g[i];
    tc += g[i] * (pre[i] - mean);
  }
  for (int64_t l = 0; l < kLanes; ++l) {
    tz += sz[l];
    tc += sc[l];
  }
  const NormGrad<acc_t> ng = norm_grad(static_cast<acc_t>(tz), static_cast<acc_t>(tc), rstd, a, n);
  for (i = 0; i < n; ++i) g[i] = a * g[i] + ng.c0 + ng.c1 * (pre[i] - mean);
  *gweight = ng.gweight;
  *gbias = ng.gbias;
}

// A loaded row for the shifted path: returns M = max L (fill −inf never wins), writes
// W = e^{L − M} (0 at the fill) and XW = X·W. One exp per input pixel instead of one per tap.
// With `mask` (0 at valid columns, −inf at the fill) the logits are λ·x and L is written here
// as lam·X + mask, from the row just deinterleaved instead of a second strided read of x.
template <typename acc_t>
LIPDET_INLINE acc_t weight_row_any(int64_t n, acc_t* __restrict L, const acc_t* __restrict X,
                                   const acc_t* __restrict mask, acc_t lam, acc_t* __restrict W,
                                   acc_t* __restrict XW, const RowPrefetch& pf) {
  // A plain `m = L > m ? L : m` loop stays scalar (the compiler keeps its NaN order); the simd
  // reduction may pick NaN as M, which turns the row's weights to NaN and sends its windows to
  // the exact form (shifted_sums), so NaN still propagates only where it is.
  acc_t m = -std::numeric_limits<acc_t>::infinity();
  if (mask != nullptr) {
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; ++i) {
      const acc_t l = lam * X[i] + mask[i];
      L[i] = l;
      m = l > m ? l : m;
    }
  } else {
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; ++i) m = L[i] > m ? L[i] : m;
  }
  // The pass runs in blocks; before each, the block's share of pf's cache lines is requested.
  // Each block re-enters a vector loop whose constants the compiler reloads: 128 elements keep
  // that overhead small while the requests still go out a few lines at a time.
  constexpr int64_t kBlock = 128, kLine = 64;
  const int64_t lines = (pf.bytes + kLine - 1) / kLine, blocks = (n + kBlock - 1) / kBlock;
  const int64_t per_block = blocks > 0 ? (lines + blocks - 1) / blocks : 0;
  for (int64_t b = 0, line = 0; b < n; b += kBlock) {
    for (const int64_t end = std::min(line + per_block, lines); line < end; ++line) {
      if (pf.a != nullptr) __builtin_prefetch(static_cast<const char*>(pf.a) + line * kLine, 0, 2);
      if (pf.b != nullptr) __builtin_prefetch(static_cast<const char*>(pf.b) + line * kLine, 0, 2);
    }
    const int64_t e = std::min(b + kBlock, n);
    for (int64_t i = b; i < e; ++i) {
      const acc_t w = wp_weight(L[i], m);
      W[i] = w;
      XW[i] = X[i] * w;
    }
  }
  return m;
}

// Below this a window's Σ e^{l − M} (M: the largest row maximum of the window) has lost its
// largest term to the exp's underflow range: such windows take the exact window-max form.
template <typename acc_t>
constexpr acc_t shifted_tiny() {
  return std::is_same<acc_t, float>::value ? acc_t(1e-19) : acc_t(1e-150);
}

// Σ e^{l−peak}, Σ x·e^{l−peak} of output o from the row buffers, the window's own peak.
template <typename acc_t>
LIPDET_INLINE WeightedSums<acc_t> exact_sums(const RowArgs<acc_t>& a, int64_t o) {
  WeightedSums<acc_t> ws{-std::numeric_limits<acc_t>::infinity(), acc_t(0), acc_t(0)};
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const acc_t l = a.logit_rows[r][(kk % a.s) * a.phase_stride + kk / a.s + o];
      ws.peak = l > ws.peak ? l : ws.peak;
    }
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const int64_t i = (kk % a.s) * a.phase_stride + kk / a.s + o;
      const acc_t e = wp_weight(a.logit_rows[r][i], ws.peak);
      ws.den += e;
      ws.num += e * a.x_rows[r][i];
    }
  return ws;
}

template <typename acc_t>
LIPDET_INLINE void tap_shifted_sums(int64_t n, acc_t f, const acc_t* __restrict w, const acc_t* __restrict xw,
                                    acc_t* __restrict den, acc_t* __restrict num) {
  for (int64_t o = 0; o < n; ++o) {
    den[o] += f * w[o];
    num[o] += f * xw[o];
  }
}

// k = 3, s = 2: taps 0 and 2 read phase 0 at o and o + 1, tap 1 reads phase 1 (J further) at o.
template <typename acc_t>
LIPDET_INLINE acc_t tap3(const acc_t* w, int64_t J, int64_t o) {
  return w[o] + w[J + o] + w[o + 1];
}

template <typename acc_t>
LIPDET_INLINE void tap3_shifted_sums(int64_t n, int64_t J, acc_t f, const acc_t* __restrict w,
                                     const acc_t* __restrict xw, acc_t* __restrict den, acc_t* __restrict num) {
  for (int64_t o = 0; o < n; ++o) {
    den[o] += f * tap3(w, J, o);
    num[o] += f * tap3(xw, J, o);
  }
}

// How many of v[0, n) are below t or NaN (a vectorisable count before any scalar scan).
template <typename acc_t>
LIPDET_INLINE int64_t count_below(int64_t n, const acc_t* __restrict v, acc_t t) {
  int64_t c = 0;
  for (int64_t o = 0; o < n; ++o) c += !(v[o] >= t);
  return c;
}

template <typename acc_t>
LIPDET_INLINE void scale_row(int64_t n, acc_t f, const acc_t* __restrict src, acc_t* __restrict dst) {
  for (int64_t o = 0; o < n; ++o) dst[o] = src[o] * f;
}

template <typename acc_t>
LIPDET_INLINE void chain_gate(int64_t n, acc_t coeff, const acc_t* __restrict l, acc_t* __restrict gl) {
  for (int64_t i = 0; i < n; ++i) gl[i] *= gate_slope(l[i], coeff);
}

// The largest row maximum of the window's rows: every row's weights are rescaled to it.
template <typename acc_t>
LIPDET_INLINE acc_t rows_peak(const RowArgs<acc_t>& a) {
  acc_t m = -std::numeric_limits<acc_t>::infinity();
  for (int64_t r = 0; r < a.rows; ++r) m = a.row_max[r] > m ? a.row_max[r] : m;
  return m;
}

// den and num of every output of the row on the shifted weights; returns how many outputs went
// to `exact` (their den/num are then exact_sums', relative to their own peak).
template <typename acc_t>
LIPDET_INLINE int64_t shifted_sums(const RowArgs<acc_t>& a, acc_t* __restrict den, acc_t* __restrict num) {
  const int64_t OW = a.out_w;
  const acc_t m = rows_peak(a);
  for (int64_t o = 0; o < OW; ++o) den[o] = acc_t(0);
  for (int64_t o = 0; o < OW; ++o) num[o] = acc_t(0);
  for (int64_t r = 0; r < a.rows; ++r) {
    const acc_t f = wp_weight(a.row_max[r], m);
    if (a.k == 3 && a.s == 2)  // the LIP-ResNet geometry: three taps in one pass over den/num
      tap3_shifted_sums(OW, a.phase_stride, f, a.weight_rows[r], a.xweight_rows[r], den, num);
    else
      for (int64_t kk = 0; kk < a.k; ++kk) {
        const int64_t off = (kk % a.s) * a.phase_stride + kk / a.s;
        tap_shifted_sums(OW, f, a.weight_rows[r] + off, a.xweight_rows[r] + off, den, num);
      }
  }
  if (count_below(OW, den, shifted_tiny<acc_t>()) == 0) return 0;
  int64_t n_exact = 0;
  for (int64_t o = 0; o < OW; ++o)
    if (!(den[o] >= shifted_tiny<acc_t>())) {  // also NaN: the exact form propagates it
      const WeightedSums<acc_t> ws = exact_sums(a, o);
      den[o] = ws.den;
      num[o] = ws.num;
      a.exact[n_exact++] = o;
    }
  return n_exact;
}

template <typename acc_t>
LIPDET_INLINE void divide_row(int64_t n, const acc_t* __restrict num, const acc_t* __restrict den,
                              acc_t* __restrict y) {
  for (int64_t o = 0; o < n; ++o) y[o] = num[o] / den[o];
}

// num -> y = num/den, den -> upstream/den (in place).
template <typename acc_t>
LIPDET_INLINE void finish_row(int64_t n, const acc_t* __restrict g, acc_t* __restrict num, acc_t* __restrict den) {
  for (int64_t o = 0; o < n; ++o) {
    const acc_t d = den[o];
    num[o] = num[o] / d;
    den[o] = g[o] / d;
  }
}

// y of a k = 3, s = 2 output row whose three input rows are all valid (every row but the edges
// of a LIP-ResNet map), in one pass: the rows' scaled tap sums meet in registers and are divided
// at once, where shifted_sums + divide_row accumulate den and num row by row through memory and
// divide in a pass of their own. Rows r: weights w_r (phase 0) and w_r + J (phase 1), x-weighted
// ones v_r, v_r + J, factors f_r. Returns how many den are below `tiny` or NaN (kept in den).
template <typename acc_t>
LIPDET_INLINE int64_t tap3_rows3_output(int64_t n, int64_t J, acc_t tiny, acc_t f0, acc_t f1, acc_t f2,
                                        const acc_t* __restrict w0, const acc_t* __restrict w1,
                                        const acc_t* __restrict w2, const acc_t* __restrict v0,
                                        const acc_t* __restrict v1, const acc_t* __restrict v2,
                                        acc_t* __restrict den, acc_t* __restrict y) {
  int64_t bad = 0;
  for (int64_t o = 0; o < n; ++o) {
    const acc_t d = f0 * tap3(w0, J, o) + f1 * tap3(w1, J, o) + f2 * tap3(w2, J, o);
    const acc_t v = f0 * tap3(v0, J, o) + f1 * tap3(v1, J, o) + f2 * tap3(v2, J, o);
    den[o] = d;
    y[o] = v / d;
    bad += !(d >= tiny);
  }
  return bad;
}

template <typename acc_t>
LIPDET_INLINE void fwd_shifted(const RowArgs<acc_t>& a) {
  if (a.k == 3 && a.s == 2 && a.rows == 3) {
    const acc_t m = rows_peak(a), tiny = shifted_tiny<acc_t>();
    const int64_t bad = tap3_rows3_output(a.out_w, a.phase_stride, tiny, wp_weight(a.row_max[0], m), wp_weight(a.row_max[1], m),
                                          wp_weight(a.row_max[2], m), a.weight_rows[0], a.weight_rows[1], a.weight_rows[2], a.xweight_rows[0],
                                          a.xweight_rows[1], a.xweight_rows[2], a.den, a.y);
    for (int64_t o = 0; bad > 0 && o < a.out_w; ++o)
      if (!(a.den[o] >= tiny)) a.y[o] = wp_output(exact_sums(a, o));  // as shifted_sums does
    return;
  }
  shifted_sums(a, a.den, a.num);
  divide_row(a.out_w, a.num, a.den, a.y);
}

// Backward of one output row on the shifted weights: each tap's weight is f_r·W; exact outputs
// are taken out of the vector loops (gd = 0) and done one by one from their own peak.
template <typename acc_t, int M, bool GLAM>
LIPDET_INLINE void bwd_shifted(const RowArgs<acc_t>& a) {
  const int64_t OW = a.out_w;
  const int64_t n_exact = shifted_sums(a, a.den, a.num);
  acc_t* y = a.num;   // num becomes y and den becomes upstream/den
  acc_t* gd = a.den;
  finish_row(OW, a.grad, y, gd);
  if constexpr (GLAM)
    for (int64_t o = 0; o < OW; ++o) a.grad_lam[o] = acc_t(0);
  const acc_t m = rows_peak(a);
  acc_t* gdr = a.grad_scaled;
  for (int64_t r = 0; r < a.rows; ++r) {
    const acc_t f = wp_weight(a.row_max[r], m);
    scale_row(OW, f, gd, gdr);
    for (int64_t i = 0; i < n_exact; ++i) gdr[a.exact[i]] = acc_t(0);
    for (int64_t kk = 0; kk < a.k; ++kk) {
      const int64_t off = (kk % a.s) * a.phase_stride + kk / a.s, goff = r * a.row_stride + off;
      tap_grad<acc_t, M, GLAM>(OW, nullptr, a.lam, a.x_rows[r] + off, a.weight_rows[r] + off, gdr, y, a.grad_x + goff,
                               M == kLogit ? a.grad_logit + goff : nullptr, a.grad_lam);
    }
  }
  for (int64_t i = 0; i < n_exact; ++i) {
    const int64_t o = a.exact[i];
    const WeightedSums<acc_t> ws = exact_sums(a, o);
    for (int64_t r = 0; r < a.rows; ++r)
      for (int64_t kk = 0; kk < a.k; ++kk) {
        const int64_t j = (kk % a.s) * a.phase_stride + kk / a.s + o, gj = r * a.row_stride + j;
        const acc_t xv = a.x_rows[r][j];
        const PixelGrad<acc_t> pg = wp_pixel_grad(gd[o], wp_weight(a.logit_rows[r][j], ws.peak), xv, y[o]);
        add_pixel_grad<acc_t, M, GLAM>(pg, a.lam, xv, y[o], a.grad_x[gj], M == kLogit ? a.grad_logit + gj : nullptr,
                                       a.grad_lam[o]);
      }
  }
  if (a.gated)  // chain ∂L/∂logit through the gate while the rows are in cache
    for (int64_t r = 0; r < a.rows; ++r) chain_gate(a.row_stride, a.coeff, a.logit_rows[r], a.grad_logit + r * a.row_stride);
}

// kLogit and kPlaneLam take the shifted path (their logits do not depend on the window);
// per-window λ (kOutLam) computes every tap's exp from the window's own peak.
template <typename acc_t>
void weighted_fwd_any(int mode, const RowArgs<acc_t>& a) {
  if (mode == kOutLam) fwd_window_lam(a);
  else fwd_shifted(a);
}

template <typename acc_t>
void weighted_bwd_any(int mode, bool glam, const RowArgs<acc_t>& a) {
  if (mode == kLogit) bwd_shifted<acc_t, kLogit, false>(a);
  else if (mode == kOutLam) bwd_window_lam(a);
  else if (glam) bwd_shifted<acc_t, kPlaneLam, true>(a);
  else bwd_shifted<acc_t, kPlaneLam, false>(a);
}

}  // namespace

namespace LIPDET_ROW_NS {
void weighted_fwd_row(int mode, const RowArgs<float>& a) { weighted_fwd_any(mode, a); }
void weighted_fwd_row(int mode, const RowArgs<double>& a) { weighted_fwd_any(mode, a); }
void weighted_bwd_row(int mode, bool glam, const RowArgs<float>& a) { weighted_bwd_any(mode, glam, a); }
void weighted_bwd_row(int mode, bool glam, const RowArgs<double>& a) { weighted_bwd_any(mode, glam, a); }
void norm_grad_plane(int64_t n, const float* pre, float* g, float scale, float mean, float rstd,
                     double* gweight, double* gbias) {
  norm_grad_any(n, pre, g, scale, mean, rstd, gweight, gbias);
}
void norm_grad_plane(int64_t n, const double* pre, double* g, double scale, double mean, double rstd,
                     double* gweight, double* gbias) {
  norm_grad_any(n, pre, g, scale, mean, rstd, gweight, gbias);
}
float weight_row(int64_t n, float* L, const float* X, const float* mask, float lam, float* W, float* XW,
                 const RowPrefetch& pf) {
  return weight_row_any(n, L, X, mask, lam, W, XW, pf);
}
double weight_row(int64_t n, double* L, const double* X, const double* mask, double lam, double* W,
                  double* XW, const RowPrefetch& pf) {
  return weight_row_any(n, L, X, mask, lam, W, XW, pf);
}
void load_gated_row(const RowLayout& rl, const float* pre, float* dst, float fill, const Gate<float>& m) {
  load_mapped(rl, pre, dst, fill, [m](float v) { return gate_logit(m.scale * v + m.shift, m.coeff); });
}
void load_gated_row(const RowLayout& rl, const double* pre, double* dst, double fill,
                    const Gate<double>& m) {
  load_mapped(rl, pre, dst, fill, [m](double v) { return gate_logit(m.scale * v + m.shift, m.coeff); });
}
void plane_moments(int64_t n, const float* v, double* mean, double* m2) { moments_any(n, v, mean, m2); }
void plane_moments(int64_t n, const double* v, double* mean, double* m2) { moments_any(n, v, mean, m2); }
}  // namespace LIPDET_ROW_NS

}  // namespace lip_det

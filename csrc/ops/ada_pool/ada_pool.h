// Math of adaPool, shared by its CPU kernel (ada_pool_cpu.cpp) and its CUDA kernel
// (ada_pool_cuda.cu): both call these window and pixel functions, so the two backends run the
// same per-window arithmetic.
//
// Over the n valid pixels of a window, with m = Σx/n (the window mean):
//   eM (SoftPool):  y_M = Σ x·e^{x} / Σ e^{x}
//   eDSCW:          y_D = Σ x·e^{d} / Σ e^{d},  d_i = dsc(x_i, m) = 2|x_i·m| / (x_i² + m²) ∈ [0, 1]
//   adaPool:        y   = β·y_D + (1 − β)·y_M
// eM subtracts the window maximum before exp; eDSCW's exponents lie in [0, 1], so it subtracts
// their bound 1 instead (every term is in [e^-1, 1]: nothing to overflow, no extra pass).
// dsc(0, 0) = 0. Exact gradients, with w the normalised weights of each branch:
//   ∂y_M/∂x_j = w^M_j·(1 + x_j − y_M)
//   ∂y_D/∂x_j = w^D_j + w^D_j·(x_j − y_D)·∂_a dsc(x_j, m) + (1/n)·Σ_i w^D_i·(x_i − y_D)·∂_b dsc(x_i, m)
//   ∂y/∂β     = y_D − y_M
// with ∂_a dsc(a, b) = sgn(a)·2|b|(b² − a²)/(a² + b²)² and ∂_b dsc(a, b) = ∂_a dsc(b, a).
#pragma once

#include "pool_common.h"

namespace lip_det {
namespace ada_pool {

template <typename acc_t>
LIPDET_HD acc_t abs_of(acc_t v) {
  return v < acc_t(0) ? -v : v;
}

// dsc(a, b) in the ratio form 2r/(1 + r²), r = min(|a|,|b|)/max(|a|,|b|): no square can overflow.
template <typename acc_t>
LIPDET_HD acc_t dsc(acc_t a, acc_t b) {
  const acc_t p = abs_of(a), q = abs_of(b);
  const acc_t t = p > q ? p : q;
  if (t == acc_t(0)) return acc_t(0);
  const acc_t r = (p > q ? q : p) / t;
  return acc_t(2) * r / (acc_t(1) + r * r);
}

// ∂dsc(a, b)/∂a, in the same ratio form (0 at a = 0, the subgradient torch's abs uses).
template <typename acc_t>
LIPDET_HD acc_t dsc_da(acc_t a, acc_t b) {
  const acc_t p = abs_of(a), q = abs_of(b);
  if (p == acc_t(0)) return acc_t(0);
  const acc_t sign = a < acc_t(0) ? acc_t(-1) : acc_t(1);
  const bool below = p <= q;
  const acc_t r = below ? p / q : q / p;
  const acc_t u = acc_t(1) + r * r;
  const acc_t f = acc_t(2) * (acc_t(1) - r * r) / (u * u);
  return below ? sign * f / q : -sign * f * r / p;
}

template <typename acc_t>
LIPDET_HD acc_t exp_of(acc_t v) {
  return exp_nonpos(v);  // every argument here is <= 0
}

// A window's statistics: its mean, each branch's shift, normaliser and output.
template <typename acc_t>
struct Window {
  acc_t mean, inv_n;
  acc_t peak_m, den_m, y_m;  // eM: shift = max x
  acc_t den_d, y_d;          // eDSCW: shift = 1
};

template <typename acc_t>
LIPDET_HD acc_t weight_m(const Window<acc_t>& w, acc_t xv) {
  return exp_of(xv - w.peak_m);
}

template <typename acc_t>
LIPDET_HD acc_t weight_d(const Window<acc_t>& w, acc_t xv) {
  return exp_of(dsc(xv, w.mean) - acc_t(1));
}

// The statistics of the window of output (od, oh, ow) in one contiguous (D, H, W) plane.
template <typename acc_t, typename scalar_t>
LIPDET_HD Window<acc_t> window(const scalar_t* x, const Dim& gd, const Dim& gh, const Dim& gw,
                               int64_t od, int64_t oh, int64_t ow) {
  const int64_t d0 = win_begin(gd, od), d1 = win_end(gd, od);
  const int64_t h0 = win_begin(gh, oh), h1 = win_end(gh, oh);
  const int64_t w0 = win_begin(gw, ow), w1 = win_end(gw, ow);
  Window<acc_t> w{};
  acc_t sum = 0, peak = static_cast<acc_t>(-INFINITY);
  for (int64_t d = d0; d < d1; ++d)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t i = w0; i < w1; ++i) {
        const acc_t v = static_cast<acc_t>(x[(d * gh.in + h) * gw.in + i]);
        sum += v;
        peak = v > peak ? v : peak;
      }
  w.inv_n = acc_t(1) / static_cast<acc_t>((d1 - d0) * (h1 - h0) * (w1 - w0));
  w.mean = sum * w.inv_n;
  w.peak_m = peak;
  acc_t num_m = 0, num_d = 0;
  for (int64_t d = d0; d < d1; ++d)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t i = w0; i < w1; ++i) {
        const acc_t v = static_cast<acc_t>(x[(d * gh.in + h) * gw.in + i]);
        const acc_t em = weight_m(w, v), ed = weight_d(w, v);
        w.den_m += em;
        num_m += em * v;
        w.den_d += ed;
        num_d += ed * v;
      }
  w.y_m = num_m / w.den_m;
  w.y_d = num_d / w.den_d;
  return w;
}

template <typename acc_t>
LIPDET_HD acc_t output(const Window<acc_t>& w, acc_t beta) {
  return beta * w.y_d + (acc_t(1) - beta) * w.y_m;
}

// What the backward's gather needs of one window, given upstream g and β: the statistics a
// pixel's weights are recomputed from, each branch's upstream/den, and the term that reaches
// every valid pixel through the window mean (∂y_D/∂m / n, times β·g).
template <typename acc_t>
struct GradWindow {
  acc_t mean, peak_m, y_m, y_d, gm, gd, through_mean;
};

template <typename acc_t, typename scalar_t>
LIPDET_HD GradWindow<acc_t> grad_window(const scalar_t* x, const Dim& gd, const Dim& gh,
                                        const Dim& gw, int64_t od, int64_t oh, int64_t ow,
                                        const Window<acc_t>& w, acc_t g, acc_t beta) {
  acc_t s = 0;  // Σ e^D_i·(x_i − y_D)·∂_b dsc(x_i, m)
  for (int64_t d = win_begin(gd, od); d < win_end(gd, od); ++d)
    for (int64_t h = win_begin(gh, oh); h < win_end(gh, oh); ++h)
      for (int64_t i = win_begin(gw, ow); i < win_end(gw, ow); ++i) {
        const acc_t v = static_cast<acc_t>(x[(d * gh.in + h) * gw.in + i]);
        s += weight_d(w, v) * (v - w.y_d) * dsc_da(w.mean, v);
      }
  const acc_t gd_div = beta * g / w.den_d;
  return {w.mean, w.peak_m, w.y_m, w.y_d, (acc_t(1) - beta) * g / w.den_m, gd_div,
          gd_div * s * w.inv_n};
}

// One window's gradient for its valid pixel of value xv.
template <typename acc_t>
LIPDET_HD acc_t pixel_grad(const GradWindow<acc_t>& gw, acc_t xv) {
  const acc_t em = exp_of(xv - gw.peak_m);
  const acc_t ed = exp_of(dsc(xv, gw.mean) - acc_t(1));
  return gw.gm * em * (acc_t(1) + xv - gw.y_m) +
         gw.gd * ed * (acc_t(1) + (xv - gw.y_d) * dsc_da(xv, gw.mean)) + gw.through_mean;
}

// ∂L/∂x of input pixel (id, ih, iw) of value xv: the sum over every window that covers it
// (windows: the plane's GradWindow per output, flat index).
template <typename acc_t>
LIPDET_HD acc_t pixel_gather(acc_t xv, const Dim& gd, const Dim& gh, const Dim& gw, int64_t id,
                             int64_t ih, int64_t iw, const GradWindow<acc_t>* windows) {
  acc_t g = 0;
  for (int64_t od = cover_first(gd, id); od < cover_end(gd, id); ++od)
    for (int64_t oh = cover_first(gh, ih); oh < cover_end(gh, ih); ++oh)
      for (int64_t ow = cover_first(gw, iw); ow < cover_end(gw, iw); ++ow)
        g += pixel_grad(windows[(od * gh.out + oh) * gw.out + ow], xv);
  return g;
}

}  // namespace ada_pool
}  // namespace lip_det

// Math of the weighted-mean poolings (the per-pixel primitives serve the CPU and CUDA kernels,
// the window functions wp_window_sums / wp_window_spread / wp_pixel_gather only CUDA's):
//   y = Σ x·e^{l} / Σ e^{l} over a window's valid pixels, with
//   LIP:      l = logit tensor,
//   SoftPool: l = x          (λ = 1),
//   Max-Ent:  l = λ·x        (λ per plane or per output window).
//   LIP with its norm and gate fused: l = coeff·σ(z), z = γ·(pre − μ)·rstd + β = a·pre + b with
//   (μ, rstd) the plane's instance statistics: LIP's SoftGate(InstanceNorm(pre)) in one op.
// Exact gradients, with w = e^{l - peak}/den:
//   ∂y/∂x_i = w_i + λ·w_i·(x_i − y)   (λ = 0 for LIP, whose logit does not depend on x),
//   ∂y/∂l_i = w_i·(x_i − y),
//   ∂y/∂λ   = Σ w_i·x_i·(x_i − y) = Σ w_i·(x_i − y)²   (the second form is never negative).
#pragma once

#include "pool_common.h"

namespace lip_det {

// A window's sums: peak (max logit, subtracted before exp), den = Σ e^{l-peak}, num = Σ x·e^{l-peak}.
template <typename acc_t>
struct WeightedSums {
  acc_t peak, den, num;
};

template <typename acc_t>
LIPDET_HD acc_t wp_weight(acc_t logit, acc_t peak) {
  return exp_nonpos(logit - peak);
}

template <typename acc_t>
LIPDET_HD acc_t wp_output(const WeightedSums<acc_t>& s) {
  return s.num / s.den;
}

// LIP's SoftGate, coeff·σ(z), from one e^{-|z|} (never overflows; NaN propagates).
template <typename acc_t>
LIPDET_HD acc_t gate_logit(acc_t z, acc_t coeff) {
  const acc_t e = exp_nonpos(z < acc_t(0) ? z : -z);
  const acc_t r = coeff / (acc_t(1) + e);
  return z < acc_t(0) ? r * e : r;
}

// dl/dz of the gate from its output l = coeff·σ(z): coeff·σ·(1 − σ) = l·(1 − l/coeff).
template <typename acc_t>
LIPDET_HD acc_t gate_slope(acc_t l, acc_t coeff) {
  return l * (acc_t(1) - l / coeff);
}

// InstanceNorm's backward folded into per-plane coefficients. With dz = ∂L/∂z over a plane of n
// pixels, sum_dz = Σ dz and sum_dz_c = Σ dz·(pre − μ): ∂L/∂pre_i = a·dz_i + c0 + c1·(pre_i − μ),
// ∂L/∂γ = Σ dz·ŷ (ŷ = (pre − μ)·rstd) and ∂L/∂β = Σ dz.
template <typename acc_t>
struct NormGrad {
  acc_t c0, c1, gweight, gbias;
};

template <typename acc_t>
LIPDET_HD NormGrad<acc_t> norm_grad(acc_t sum_dz, acc_t sum_dz_c, acc_t rstd, acc_t a, int64_t n) {
  const acc_t s = rstd * sum_dz_c;  // Σ dz·ŷ
  return {-a * sum_dz / static_cast<acc_t>(n), -a * rstd * s / static_cast<acc_t>(n), s, sum_dz};
}

// One pixel's share of one window's gradient, given gd = (upstream gradient)/den and the
// pixel's unnormalised weight e: d = ∂y/∂x with the weight held fixed, t = ∂y/∂logit.
template <typename acc_t>
struct PixelGrad {
  acc_t d, t;
};

template <typename acc_t>
LIPDET_HD PixelGrad<acc_t> wp_pixel_grad(acc_t gd, acc_t e, acc_t x, acc_t y) {
  const acc_t d = gd * e;
  return {d, d * (x - y)};
}

// Peak, den and num of the window of output (od, oh, ow) in one contiguous (D, H, W) plane.
// `logit(x_value, flat_index)` gives the pixel's logit.
template <typename acc_t, typename scalar_t, typename Logit>
LIPDET_HD WeightedSums<acc_t> wp_window_sums(const scalar_t* x, const Dim& gd, const Dim& gh,
                                              const Dim& gw, int64_t od, int64_t oh, int64_t ow,
                                              Logit logit) {
  const int64_t d0 = win_begin(gd, od), d1 = win_end(gd, od);
  const int64_t h0 = win_begin(gh, oh), h1 = win_end(gh, oh);
  const int64_t w0 = win_begin(gw, ow), w1 = win_end(gw, ow);
  WeightedSums<acc_t> s{static_cast<acc_t>(-INFINITY), acc_t(0), acc_t(0)};
  for (int64_t d = d0; d < d1; ++d)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t i = (d * gh.in + h) * gw.in + w;
        const acc_t l = logit(static_cast<acc_t>(x[i]), i);
        s.peak = l > s.peak ? l : s.peak;
      }
  for (int64_t d = d0; d < d1; ++d)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t i = (d * gh.in + h) * gw.in + w;
        const acc_t xv = static_cast<acc_t>(x[i]);
        const acc_t e = wp_weight(logit(xv, i), s.peak);
        s.den += e;
        s.num += e * xv;
      }
  return s;
}

// Σ w·(x − y)² of a window (∂y/∂λ), given its sums.
template <typename acc_t, typename scalar_t, typename Logit>
LIPDET_HD acc_t wp_window_spread(const scalar_t* x, const Dim& gd, const Dim& gh, const Dim& gw,
                                 int64_t od, int64_t oh, int64_t ow, Logit logit,
                                 const WeightedSums<acc_t>& s) {
  const acc_t y = wp_output(s);
  acc_t acc = 0;
  for (int64_t d = win_begin(gd, od); d < win_end(gd, od); ++d)
    for (int64_t h = win_begin(gh, oh); h < win_end(gh, oh); ++h)
      for (int64_t w = win_begin(gw, ow); w < win_end(gw, ow); ++w) {
        const int64_t i = (d * gh.in + h) * gw.in + w;
        const acc_t xv = static_cast<acc_t>(x[i]);
        const acc_t e = wp_weight(logit(xv, i), s.peak);
        acc += e * (xv - y) * (xv - y);
      }
  return acc / s.den;
}

// Gather form of the backward for input pixel (id, ih, iw) with value xv: sums the gradient
// over every window that covers it, reading per-output peak, den and y (flat output index o)
// and gdiv = upstream/den. `logit(xv, o)` and `lam(o)` give the pixel's logit in window o and
// the window's ∂logit/∂x. Returns {∂L/∂x, ∂L/∂logit}.
template <typename acc_t, typename Logit, typename Lam>
LIPDET_HD PixelGrad<acc_t> wp_pixel_gather(acc_t xv, const Dim& gd, const Dim& gh, const Dim& gw,
                                           int64_t id, int64_t ih, int64_t iw,
                                           const acc_t* peak, const acc_t* gdiv, const acc_t* y,
                                           Logit logit, Lam lam) {
  PixelGrad<acc_t> g{acc_t(0), acc_t(0)};
  for (int64_t od = cover_first(gd, id); od < cover_end(gd, id); ++od)
    for (int64_t oh = cover_first(gh, ih); oh < cover_end(gh, ih); ++oh)
      for (int64_t ow = cover_first(gw, iw); ow < cover_end(gw, iw); ++ow) {
        const int64_t o = (od * gh.out + oh) * gw.out + ow;
        const PixelGrad<acc_t> pg =
            wp_pixel_grad(gdiv[o], wp_weight(logit(xv, o), peak[o]), xv, y[o]);
        g.d += pg.d + lam(o) * pg.t;
        g.t += pg.t;
      }
  return g;
}

}  // namespace lip_det

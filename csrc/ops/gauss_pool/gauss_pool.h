// Math of Gaussian (iSP) pooling (gauss_finish / gauss_output / gauss_coef serve the CPU and
// CUDA kernels, the window functions gauss_window / gauss_pixel_gather only CUDA's):
//   y = μ + η·σ,  μ = S1/n,  var = S2/n − μ²,  σ = sqrt(max(var, ε)),  ε = 1e-6,
// over the n valid pixels of the window (S1 = Σx, S2 = Σx²). Gradients:
//   ∂y/∂x_i = 1/n + [var ≥ ε]·η·(x_i − μ)/(n·σ),   ∂y/∂η = σ.
// The indicator is torch.clamp(min=ε)'s: below the floor σ is constant in x.
#pragma once

#include "pool_common.h"

namespace lip_det {

constexpr double kGaussVarEps = 1e-6;

template <typename acc_t>
struct GaussWindow {
  acc_t mean, sigma, inv_n;
  bool active;  // var >= eps: σ depends on x
};

template <typename acc_t>
LIPDET_HD GaussWindow<acc_t> gauss_finish(acc_t s1, acc_t s2, acc_t n) {
  const acc_t eps = static_cast<acc_t>(kGaussVarEps);
  const acc_t mean = s1 / n;
  const acc_t var = s2 / n - mean * mean;
  const bool active = var >= eps;
  return {mean, static_cast<acc_t>(::sqrt(active ? var : eps)), acc_t(1) / n, active};
}

template <typename acc_t>
LIPDET_HD acc_t gauss_output(const GaussWindow<acc_t>& w, acc_t eta) {
  return w.mean + eta * w.sigma;
}

// ∂L/∂x_i = a + b·(x_i − μ) for every valid pixel of the window, given upstream g.
template <typename acc_t>
struct GaussCoef {
  acc_t a, b;
};

template <typename acc_t>
LIPDET_HD GaussCoef<acc_t> gauss_coef(const GaussWindow<acc_t>& w, acc_t g, acc_t eta) {
  const acc_t a = g * w.inv_n;
  return {a, w.active ? a * eta / w.sigma : acc_t(0)};
}

// S1, S2 and n of the window of output (od, oh, ow) in one contiguous (D, H, W) plane.
template <typename acc_t, typename scalar_t>
LIPDET_HD GaussWindow<acc_t> gauss_window(const scalar_t* x, const Dim& gd, const Dim& gh,
                                          const Dim& gw, int64_t od, int64_t oh, int64_t ow) {
  const int64_t d0 = win_begin(gd, od), d1 = win_end(gd, od);
  const int64_t h0 = win_begin(gh, oh), h1 = win_end(gh, oh);
  const int64_t w0 = win_begin(gw, ow), w1 = win_end(gw, ow);
  acc_t s1 = 0, s2 = 0;
  for (int64_t d = d0; d < d1; ++d)
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const acc_t v = static_cast<acc_t>(x[(d * gh.in + h) * gw.in + w]);
        s1 += v;
        s2 += v * v;
      }
  return gauss_finish(s1, s2, static_cast<acc_t>((d1 - d0) * (h1 - h0) * (w1 - w0)));
}

// Gather form of the backward for input pixel (id, ih, iw) with value xv: Σ over the windows
// covering it of a_o + b_o·(xv − μ_o), from per-output coefficients (flat output index o).
template <typename acc_t>
LIPDET_HD acc_t gauss_pixel_gather(acc_t xv, const Dim& gd, const Dim& gh, const Dim& gw,
                                   int64_t id, int64_t ih, int64_t iw, const acc_t* coef_a,
                                   const acc_t* coef_b, const acc_t* mean) {
  acc_t g = 0;
  for (int64_t od = cover_first(gd, id); od < cover_end(gd, id); ++od)
    for (int64_t oh = cover_first(gh, ih); oh < cover_end(gh, ih); ++oh)
      for (int64_t ow = cover_first(gw, iw); ow < cover_end(gw, iw); ++ow) {
        const int64_t o = (od * gh.out + oh) * gw.out + ow;
        g += coef_a[o] + coef_b[o] * (xv - mean[o]);
      }
  return g;
}

}  // namespace lip_det

// CUDA kernels of LIP, SoftPool and Max-Entropy pooling, on the math of weighted_pool.h. The CPU
// kernels share its per-pixel primitives, not its window functions (wp_window_sums,
// wp_pixel_gather: CUDA only) nor its per-window maximum: csrc/README.md.
//
// Forward: one thread per output. Backward without atomics, deterministic: a first kernel,
// one thread per output, recomputes each window's small sums (peak, upstream/den, y); a second,
// one thread per input pixel, gathers the gradient over exactly the windows that cover the pixel. Half types read and write
// their own dtype and accumulate in float32.
//
// tests/ops/cuda_emulation.cpp compiles this file as host C++ with LIPDET_CUDA_EMULATION
// (cuda/emulation.h: one thread walks each grid) so that the CPU tests run these kernels.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "cuda/launch.h"
#include "ops/weighted_pool/weighted_pool.h"
#include "ops/weighted_pool/weighted_pool_ops.h"

namespace lip_det {
namespace {

using Shape = PlaneShape;

// Logit of a pixel inside a window: from the logit tensor, or λ·x.
template <typename scalar_t, typename acc_t>
struct TensorLogit {
  const scalar_t* l;
  __host__ __device__ acc_t operator()(acc_t, int64_t i) const { return static_cast<acc_t>(l[i]); }
};
template <typename acc_t>
struct ScaledLogit {
  acc_t lam;
  __host__ __device__ acc_t operator()(acc_t x, int64_t) const { return lam * x; }
};
// LIP with its gate fused: coeff·σ(a·pre + b), a and b of the plane.
template <typename scalar_t, typename acc_t>
struct GatedLogit {
  const scalar_t* pre;
  acc_t a, b, coeff;
  __host__ __device__ acc_t operator()(acc_t, int64_t i) const {
    return gate_logit(a * static_cast<acc_t>(pre[i]) + b, coeff);
  }
};
// The plane's gate, when the kernel has one (gs == nullptr: plain LIP).
template <typename acc_t>
struct GateParams {
  const acc_t *scale, *shift;
  acc_t coeff;
};
// In the gather: the pixel's logit in window o, and the window's ∂logit/∂x.
template <typename acc_t>
struct FixedLogit {
  acc_t l;
  __host__ __device__ acc_t operator()(acc_t, int64_t) const { return l; }
};
template <typename acc_t>
struct WindowLamLogit {
  const acc_t* lam;  // per output of the plane
  __host__ __device__ acc_t operator()(acc_t x, int64_t o) const { return lam[o] * x; }
};
template <typename acc_t>
struct ConstLam {
  acc_t v;
  __host__ __device__ acc_t operator()(int64_t) const { return v; }
};
template <typename acc_t>
struct WindowLam {
  const acc_t* lam;
  __host__ __device__ acc_t operator()(int64_t o) const { return lam[o]; }
};

// λ of output `idx` (global flat index) of plane p; no λ tensor (SoftPool): λ = 1.
template <typename acc_t>
__device__ __forceinline__ acc_t lam_at(const acc_t* lam, bool per_output, int64_t p, int64_t idx) {
  if (lam == nullptr) return acc_t(1);
  return per_output ? lam[idx] : lam[p];
}

// The window sums of output (od, oh, ow) of plane p for LIP: from the logit tensor, or from the
// fused gate's pre-gate map when the kernel has a gate.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ WeightedSums<acc_t> lip_sums(const scalar_t* xp, const scalar_t* lp,
                                                         const GateParams<acc_t>& gp, const Shape& s,
                                                         int64_t p, int64_t od, int64_t oh, int64_t ow) {
  if (gp.scale != nullptr)
    return wp_window_sums<acc_t>(xp, s.d, s.h, s.w, od, oh, ow,
                                 GatedLogit<scalar_t, acc_t>{lp, gp.scale[p], gp.shift[p], gp.coeff});
  return wp_window_sums<acc_t>(xp, s.d, s.h, s.w, od, oh, ow, TensorLogit<scalar_t, acc_t>{lp});
}

template <typename scalar_t, typename acc_t, bool LIP>
__global__ void weighted_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ logit,
                                        const acc_t* __restrict__ lam, bool per_output,
                                        GateParams<acc_t> gp, Shape s, int64_t total, scalar_t* __restrict__ y) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / s.out_plane;
    const Index3 out_at = plane_index(s, idx % s.out_plane, true);
    const int64_t od = out_at.d, oh = out_at.h, ow = out_at.w;
    const scalar_t* xp = x + p * s.in_plane;
    WeightedSums<acc_t> ws;
    if constexpr (LIP)
      ws = lip_sums(xp, logit + p * s.in_plane, gp, s, p, od, oh, ow);
    else
      ws = wp_window_sums<acc_t>(xp, s.d, s.h, s.w, od, oh, ow,
                                 ScaledLogit<acc_t>{lam_at(lam, per_output, p, idx)});
    y[idx] = static_cast<scalar_t>(wp_output(ws));
  }
}

// Per-output sums for the backward: peak, gdiv = upstream/den, y, and (Max-Ent) upstream·∂y/∂λ.
template <typename scalar_t, typename acc_t, bool LIP>
__global__ void weighted_stats_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ logit,
                                      const acc_t* __restrict__ lam, bool per_output,
                                      GateParams<acc_t> gp, const scalar_t* __restrict__ grad, Shape s,
                                      int64_t total,
                                      acc_t* __restrict__ peak, acc_t* __restrict__ gdiv,
                                      acc_t* __restrict__ yout, acc_t* __restrict__ glam) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / s.out_plane;
    const Index3 out_at = plane_index(s, idx % s.out_plane, true);
    const int64_t od = out_at.d, oh = out_at.h, ow = out_at.w;
    const scalar_t* xp = x + p * s.in_plane;
    const acc_t g = static_cast<acc_t>(grad[idx]);
    WeightedSums<acc_t> ws;
    if constexpr (LIP) {
      ws = lip_sums(xp, logit + p * s.in_plane, gp, s, p, od, oh, ow);
    } else {
      const ScaledLogit<acc_t> lg{lam_at(lam, per_output, p, idx)};
      ws = wp_window_sums<acc_t>(xp, s.d, s.h, s.w, od, oh, ow, lg);
      if (glam != nullptr) glam[idx] = g * wp_window_spread(xp, s.d, s.h, s.w, od, oh, ow, lg, ws);
    }
    peak[idx] = ws.peak;
    gdiv[idx] = g / ws.den;
    yout[idx] = wp_output(ws);
  }
}

// With a gate, gz receives ∂L/∂z (z = scale·pre + shift) and gl is left for norm_pre_grad_kernel.
template <typename scalar_t, typename acc_t, bool LIP>
__global__ void weighted_gather_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ logit,
                                       const acc_t* __restrict__ lam, bool per_output,
                                       GateParams<acc_t> gp, Shape s, int64_t total,
                                       const acc_t* __restrict__ peak, const acc_t* __restrict__ gdiv,
                                       const acc_t* __restrict__ yout, scalar_t* __restrict__ gx,
                                       scalar_t* __restrict__ gl, acc_t* __restrict__ gz) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / s.in_plane;
    const Index3 in_at = plane_index(s, idx % s.in_plane, false);
    const int64_t id = in_at.d, ih = in_at.h, iw = in_at.w;
    const acc_t xv = static_cast<acc_t>(x[idx]);
    const int64_t ob = p * s.out_plane;
    PixelGrad<acc_t> g;
    if constexpr (LIP) {
      const acc_t lv = static_cast<acc_t>(logit[idx]);
      const acc_t a = gp.scale != nullptr ? gp.scale[p] : acc_t(1);
      const acc_t l = gp.scale != nullptr ? gate_logit(a * lv + gp.shift[p], gp.coeff) : lv;
      g = wp_pixel_gather(xv, s.d, s.h, s.w, id, ih, iw, peak + ob, gdiv + ob, yout + ob,
                          FixedLogit<acc_t>{l}, ConstLam<acc_t>{acc_t(0)});
      if (gp.scale != nullptr) {
        gz[idx] = g.t * gate_slope(l, gp.coeff);  // ∂L/∂pre needs the plane sums: norm_pre_grad_kernel
      } else {
        gl[idx] = static_cast<scalar_t>(g.t);
      }
    } else if (lam == nullptr || !per_output) {
      const acc_t lv = lam == nullptr ? acc_t(1) : lam[p];
      g = wp_pixel_gather(xv, s.d, s.h, s.w, id, ih, iw, peak + ob, gdiv + ob, yout + ob,
                          ScaledLogit<acc_t>{lv}, ConstLam<acc_t>{lv});
    } else {
      g = wp_pixel_gather(xv, s.d, s.h, s.w, id, ih, iw, peak + ob, gdiv + ob, yout + ob,
                          WindowLamLogit<acc_t>{lam + ob}, WindowLam<acc_t>{lam + ob});
    }
    gx[idx] = static_cast<scalar_t>(g.d);
  }
}

// InstanceNorm's backward, one thread per plane for the coefficients (norm_grad), then one per
// pixel: ∂L/∂pre = a·dz + c0 + c1·(pre − μ).
template <typename acc_t>
__global__ void norm_coef_kernel(const acc_t* __restrict__ sum_dz, const acc_t* __restrict__ sum_dz_c,
                                 const acc_t* __restrict__ rstd, const acc_t* __restrict__ scale, int64_t n,
                                 int64_t planes, acc_t* __restrict__ coef, acc_t* __restrict__ gw,
                                 acc_t* __restrict__ gb) {
  LIPDET_GRID_LOOP(p, planes) {
    const NormGrad<acc_t> ng = norm_grad(sum_dz[p], sum_dz_c[p], rstd[p], scale[p], n);
    coef[2 * p] = ng.c0;
    coef[2 * p + 1] = ng.c1;
    gw[p] = ng.gweight;
    gb[p] = ng.gbias;
  }
}

template <typename scalar_t, typename acc_t>
__global__ void norm_pre_grad_kernel(const scalar_t* __restrict__ pre, const acc_t* __restrict__ gz,
                                     const acc_t* __restrict__ mean, const acc_t* __restrict__ scale,
                                     const acc_t* __restrict__ coef, int64_t in_plane, int64_t total,
                                     scalar_t* __restrict__ gpre) {
  LIPDET_GRID_LOOP(idx, total) {
    const int64_t p = idx / in_plane;
    const acc_t c = static_cast<acc_t>(pre[idx]) - mean[p];
    gpre[idx] = static_cast<scalar_t>(scale[p] * gz[idx] + coef[2 * p] + coef[2 * p + 1] * c);
  }
}

template <typename acc_t>
GateParams<acc_t> gate_params(const at::Tensor& scale, const at::Tensor& shift, const PlaneNorm* gate) {
  if (gate == nullptr) return {nullptr, nullptr, acc_t(0)};
  return {scale.data_ptr<acc_t>(), shift.data_ptr<acc_t>(), static_cast<acc_t>(gate->coeff)};
}

struct CudaBackend {
  // The four LIP-family entry points share these two; `gate` (or null) turns `logit` into the
  // fused gate's pre-gate map.
  static at::Tensor forward(Weighted kind, const at::Tensor& x, const std::optional<at::Tensor>& logit,
                            const std::optional<at::Tensor>& lam, const PlaneNorm* gate, const Geometry& g) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    const at::Tensor lc = kind == Weighted::kLip ? logit->contiguous() : at::Tensor();
    const at::ScalarType acc = acc_type(x.scalar_type());
    const WindowParam wp = kind == Weighted::kMaxEnt ? window_param(*lam, g, acc) : WindowParam{at::Tensor(), false};
    const at::Tensor gs = gate ? gate->scale.to(acc).contiguous() : at::Tensor();
    const at::Tensor gb = gate ? gate->shift.to(acc).contiguous() : at::Tensor();
    at::Tensor y = at::empty(g.out_shape, xc.options());
    const int64_t total = y.numel();
    const Shape s = g.plane_shape();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip_det_weighted_forward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const acc_t* lamp = wp.values.defined() ? wp.values.data_ptr<acc_t>() : nullptr;
      const GateParams<acc_t> gp = gate_params<acc_t>(gs, gb, gate);
      if (kind == Weighted::kLip)
        LIPDET_LAUNCH(total, stream, weighted_forward_kernel<scalar_t, acc_t, true>)(
            xc.data_ptr<scalar_t>(), lc.data_ptr<scalar_t>(), nullptr, false, gp, s, total,
            y.data_ptr<scalar_t>());
      else
        LIPDET_LAUNCH(total, stream, weighted_forward_kernel<scalar_t, acc_t, false>)(
            xc.data_ptr<scalar_t>(), nullptr, lamp, wp.per_output, gp, s, total, y.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
  }

  // Returns ∂L/∂x, the second gradient (∂L/∂logit or ∂L/∂pre, or ∂L/∂λ) and, with a gate,
  // ∂L/∂z per pixel (float accumulation dtype) for the per-plane sums.
  static std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(
      Weighted kind, const at::Tensor& grad, const at::Tensor& x, const std::optional<at::Tensor>& logit,
      const std::optional<at::Tensor>& lam, const PlaneNorm* gate, const Geometry& g) {
    const c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor xc = x.contiguous();
    const at::Tensor gc = grad.to(x.scalar_type()).contiguous();
    const at::Tensor lc = kind == Weighted::kLip ? logit->contiguous() : at::Tensor();
    const at::ScalarType acc = acc_type(x.scalar_type());
    const WindowParam wp = kind == Weighted::kMaxEnt ? window_param(*lam, g, acc) : WindowParam{at::Tensor(), false};
    const at::Tensor gs = gate ? gate->scale.to(acc).contiguous() : at::Tensor();
    const at::Tensor gb = gate ? gate->shift.to(acc).contiguous() : at::Tensor();
    const bool lip = kind == Weighted::kLip;
    const int64_t n_out = g.planes() * g.out_plane(), n_in = xc.numel();
    const auto acc_opts = xc.options().dtype(acc);
    at::Tensor peak = at::empty({n_out}, acc_opts), gdiv = at::empty({n_out}, acc_opts),
               yout = at::empty({n_out}, acc_opts);
    at::Tensor glam = kind == Weighted::kMaxEnt ? at::empty({g.planes(), g.out_plane()}, acc_opts) : at::Tensor();
    at::Tensor gx = at::empty_like(xc, at::MemoryFormat::Contiguous);
    at::Tensor gl = lip ? at::empty_like(lc, at::MemoryFormat::Contiguous) : at::Tensor();
    at::Tensor gz = gate ? at::empty({g.planes(), g.in_plane()}, acc_opts) : at::Tensor();
    const Shape s = g.plane_shape();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lip_det_weighted_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const acc_t* lamp = wp.values.defined() ? wp.values.data_ptr<acc_t>() : nullptr;
      acc_t* glamp = glam.defined() ? glam.data_ptr<acc_t>() : nullptr;
      const scalar_t* lp = lip ? lc.data_ptr<scalar_t>() : nullptr;
      const GateParams<acc_t> gp = gate_params<acc_t>(gs, gb, gate);
      if (lip) {
        LIPDET_LAUNCH(n_out, stream, weighted_stats_kernel<scalar_t, acc_t, true>)(
            xc.data_ptr<scalar_t>(), lp, nullptr, false, gp, gc.data_ptr<scalar_t>(), s, n_out,
            peak.data_ptr<acc_t>(), gdiv.data_ptr<acc_t>(), yout.data_ptr<acc_t>(), nullptr);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        LIPDET_LAUNCH(n_in, stream, weighted_gather_kernel<scalar_t, acc_t, true>)(
            xc.data_ptr<scalar_t>(), lp, nullptr, false, gp, s, n_in, peak.data_ptr<acc_t>(),
            gdiv.data_ptr<acc_t>(), yout.data_ptr<acc_t>(), gx.data_ptr<scalar_t>(), gl.data_ptr<scalar_t>(),
            gz.defined() ? gz.data_ptr<acc_t>() : nullptr);
      } else {
        LIPDET_LAUNCH(n_out, stream, weighted_stats_kernel<scalar_t, acc_t, false>)(
            xc.data_ptr<scalar_t>(), nullptr, lamp, wp.per_output, gp, gc.data_ptr<scalar_t>(), s, n_out,
            peak.data_ptr<acc_t>(), gdiv.data_ptr<acc_t>(), yout.data_ptr<acc_t>(), glamp);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        LIPDET_LAUNCH(n_in, stream, weighted_gather_kernel<scalar_t, acc_t, false>)(
            xc.data_ptr<scalar_t>(), nullptr, lamp, wp.per_output, gp, s, n_in, peak.data_ptr<acc_t>(),
            gdiv.data_ptr<acc_t>(), yout.data_ptr<acc_t>(), gx.data_ptr<scalar_t>(), nullptr, nullptr);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    at::Tensor second;
    if (lip) second = gl;
    else if (kind == Weighted::kMaxEnt)
      second = reduce_param_grad(wp.per_output ? glam : glam.sum(1), g, *lam);
    return {gx, second, gz};
  }

  static at::Tensor weighted_forward(Weighted kind, const at::Tensor& x,
                                     const std::optional<at::Tensor>& logit,
                                     const std::optional<at::Tensor>& lam, const Geometry& g) {
    return forward(kind, x, logit, lam, nullptr, g);
  }

  static std::tuple<at::Tensor, at::Tensor> weighted_backward(
      Weighted kind, const at::Tensor& grad, const at::Tensor& x,
      const std::optional<at::Tensor>& logit, const std::optional<at::Tensor>& lam,
      const Geometry& g) {
    auto r = backward(kind, grad, x, logit, lam, nullptr, g);
    return {std::get<0>(r), std::get<1>(r)};
  }

  static std::tuple<at::Tensor, at::Tensor> plane_stats(const at::Tensor& pre, double eps, const Geometry& g) {
    const c10::cuda::CUDAGuard guard(pre.device());
    const at::Tensor v = pre.contiguous().view({g.planes(), g.in_plane()}).to(acc_type(pre.scalar_type()));
    const auto vm = at::var_mean(v, {1}, /*correction=*/0);
    return {std::get<1>(vm), (std::get<0>(vm) + eps).rsqrt()};
  }

  static at::Tensor gated_forward(const at::Tensor& x, const at::Tensor& pre, const PlaneNorm& norm,
                                  const Geometry& g) {
    return forward(Weighted::kLip, x, pre, std::nullopt, &norm, g);
  }

  static GatedGrads gated_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& pre,
                                   const PlaneNorm& norm, const Geometry& g) {
    auto r = backward(Weighted::kLip, grad, x, pre, std::nullopt, &norm, g);
    const at::Tensor& gz = std::get<2>(r);
    at::Tensor gpre = std::get<1>(r);
    const at::Tensor pc = pre.contiguous();
    const at::Tensor centred = pc.view({g.planes(), g.in_plane()}).to(gz.scalar_type()) - norm.mean.unsqueeze(1);
    const at::Tensor sum_dz = gz.sum(1), sum_dz_c = (gz * centred).sum(1);
    at::Tensor coef = at::empty({g.planes(), 2}, gz.options());
    at::Tensor gw = at::empty({g.planes()}, gz.options()), gb = at::empty({g.planes()}, gz.options());
    const int64_t n_in = gz.numel();
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pre.scalar_type(), "lip_det_norm_grad_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      LIPDET_LAUNCH(g.planes(), stream, norm_coef_kernel<acc_t>)(
          sum_dz.data_ptr<acc_t>(), sum_dz_c.data_ptr<acc_t>(), norm.rstd.data_ptr<acc_t>(),
          norm.scale.data_ptr<acc_t>(), g.in_plane(), g.planes(), coef.data_ptr<acc_t>(), gw.data_ptr<acc_t>(),
          gb.data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      LIPDET_LAUNCH(n_in, stream, norm_pre_grad_kernel<scalar_t, acc_t>)(
          pc.data_ptr<scalar_t>(), gz.data_ptr<acc_t>(), norm.mean.data_ptr<acc_t>(), norm.scale.data_ptr<acc_t>(),
          coef.data_ptr<acc_t>(), g.in_plane(), n_in, gpre.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return {std::get<0>(r), gpre, gw, gb};
  }
};

}  // namespace
}  // namespace lip_det

#ifdef LIPDET_CUDA_EMULATION
TORCH_LIBRARY_FRAGMENT(lip_det_cuda_emulation, m) {
  lip_det::weighted_pool::define_ops(m);
}
TORCH_LIBRARY_IMPL(lip_det_cuda_emulation, CPU, m) {
  lip_det::weighted_pool::Ops<lip_det::CudaBackend>::register_all(m);
}
#else
TORCH_LIBRARY_IMPL(lip_det, CUDA, m) {
  lip_det::weighted_pool::Ops<lip_det::CudaBackend>::register_all(m);
}
#endif

// CPU kernels of LIP, SoftPool (1/2/3-d) and Max-Entropy pooling.
//
// Forward: each task takes one output row (plane, od, oh), copies its valid input rows into
// deinterleaved buffers (cpu/row_args.h: RowLayout) once, with their logits and per-row shifted
// weights (weighted_pool_row_kernels.h: weight_row), then runs unit-stride passes over the row's outputs:
// Σe and Σx·e, and y = Σx·e / Σe. Only the input rows being pooled and O(row) sums are ever
// live: no x·e^l or e^l tensors.
// Backward: one task per (N·C) plane, so the scatter of overlapping windows needs no atomics;
// each output row recomputes its weights from the inputs (nothing but inputs is saved).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "cpu/row_buffers.h"
#include "ops/weighted_pool/weighted_pool_ops.h"
#include "ops/weighted_pool/weighted_pool_rows.h"

namespace lip_det {

struct CpuBackend {
  static at::Tensor weighted_forward(Weighted kind, const at::Tensor& x,
                                     const std::optional<at::Tensor>& logit,
                                     const std::optional<at::Tensor>& lam, const Geometry& g);
  static std::tuple<at::Tensor, at::Tensor> weighted_backward(
      Weighted kind, const at::Tensor& grad, const at::Tensor& x,
      const std::optional<at::Tensor>& logit, const std::optional<at::Tensor>& lam,
      const Geometry& g);
  static std::tuple<at::Tensor, at::Tensor> plane_stats(const at::Tensor& pre, double eps,
                                                        const Geometry& g);
  static at::Tensor gated_forward(const at::Tensor& x, const at::Tensor& pre, const PlaneNorm& norm,
                                  const Geometry& g);
  static GatedGrads gated_backward(const at::Tensor& grad, const at::Tensor& x,
                                   const at::Tensor& pre, const PlaneNorm& norm, const Geometry& g);
};

namespace {

template <typename acc_t>
void fwd_row(CpuIsa isa, int mode, const RowArgs<acc_t>& a) {
  LIPDET_ROWS_DISPATCH(isa, weighted_fwd_row(mode, a))
}

template <typename acc_t>
void bwd_row(CpuIsa isa, int mode, bool glam, const RowArgs<acc_t>& a) {
  LIPDET_ROWS_DISPATCH(isa, weighted_bwd_row(mode, glam, a))
}

// Where Scratch::load gets the logit rows of a plane: LIP's logit (kCopy from `src`), its
// pre-norm map through the plane's `gate` (kGate), λ·x (kLamX: `src` = x, formed by weight_row
// with `lam`), or nowhere (kNone, `src` null: per-window λ takes its exps from the x rows).
enum class LogitLoad { kCopy, kGate, kLamX, kNone };

template <typename acc_t>
struct LogitRows {
  const acc_t* src;
  LogitLoad load;
  Gate<acc_t> gate;
  acc_t lam;
};

// Per-task buffers: a cache of deinterleaved input rows of the current plane (consecutive
// output rows share input rows when stride < kernel, so each row is loaded once), the padding
// mask of the row layout, and O(row) sums. The cache has one slot per window row, no more: a
// row's buffers are then still in L1 when its windows read them (twice the slots, 68 KB for a
// k3/s2 row of 672, did not fit in 48 KB and ran 3-5% slower).
template <typename acc_t>
struct Scratch {
  struct Slot {
    int64_t tag = -1, used = -1;
    RowBuffer<acc_t> X, L, W, XW;  // W, XW: the shifted path's weights (weighted_pool_row_kernels.h)
    acc_t M = 0;
  };
  std::vector<Slot> slots;
  RowBuffer<acc_t> mask, peak, den, num, tap_weights, grad_x, grad_logit, grad_lam, grad_scaled, row_max;
  std::vector<int64_t> rows, next_rows, exact;
  std::vector<const acc_t*> x_rows, logit_rows, weight_rows, xweight_rows;
  std::vector<Slot*> hit_slot;
  int64_t plane = -1, stamp = 0;

  Scratch(CpuIsa isa, const Geometry& g, const RowLayout& rl, bool logit, bool backward) {
    const int64_t R = g.d.k * g.h.k, S = rl.size(), OW = g.w.out;
    slots.resize(R);
    for (Slot& sl : slots) {
      sl.X.resize(S);
      if (logit) {
        sl.L.resize(S);
        sl.W.resize(S);
        sl.XW.resize(S);
      }
    }
    mask.resize(S);
    mask_row(isa, rl, mask.data(), -std::numeric_limits<acc_t>::infinity());
    peak.resize(OW);
    den.resize(OW);
    num.resize(OW);
    rows.resize(R);
    hit_slot.resize(R);
    next_rows.resize(R);
    x_rows.resize(R);
    logit_rows.resize(R);
    weight_rows.resize(R);
    xweight_rows.resize(R);
    row_max.resize(R);
    exact.resize(OW);
    grad_scaled.resize(OW);
    if (backward) {
      tap_weights.resize(R * g.w.k * OW);
      grad_x.resize(R * S);
      grad_logit.resize(R * S);
      grad_lam.resize(OW);
    }
    init_args(g, rl);
  }

  // Point x_rows (and logit_rows, weight_rows, xweight_rows, row_max when the plane has logit
  // rows) at the valid input rows of output row (od, oh) of plane p; returns their count.
  int64_t load(CpuIsa isa, const Geometry& g, const RowLayout& rl, int64_t p, const acc_t* xp,
               const LogitRows<acc_t>& lr, int64_t od, int64_t oh) {
    const acc_t* lsrc = lr.src;
    if (p != plane) {
      plane = p;
      for (Slot& sl : slots) sl.tag = -1;
    }
    ++stamp;
    const int64_t R = window_rows(g, od, oh, rows.data());
    int64_t n_next = lsrc != nullptr ? uncached_next_rows(g, od, oh) : 0;  // rows to prefetch
    for (int64_t r = 0; r < R; ++r) {  // first mark the rows already cached, so none is evicted
      hit_slot[r] = nullptr;
      for (Slot& sl : slots)
        if (sl.tag == rows[r]) hit_slot[r] = &sl;
      if (hit_slot[r] != nullptr) hit_slot[r]->used = stamp;
    }
    for (int64_t r = 0; r < R; ++r) {
      Slot* hit = hit_slot[r];
      if (hit == nullptr) {
        for (Slot& sl : slots)  // the least recently used slot outside this window
          if (sl.used != stamp && (hit == nullptr || sl.used < hit->used)) hit = &sl;
        hit->tag = rows[r];
        load_row(isa, rl, xp + rows[r], hit->X.data(), acc_t(0));
        if (lsrc != nullptr) {
          // Each row's exp pass asks for one input row of the next output row, spread over
          // the pass: that row's trip from memory then overlaps arithmetic instead of
          // stalling its load, and the requests never queue up in a burst.
          const bool from_x = lr.load == LogitLoad::kLamX;  // lsrc is xp, nothing else to read
          RowPrefetch pf{nullptr, nullptr, 0};
          if (n_next > 0) {
            const int64_t nr = next_rows[--n_next];
            pf = {xp + nr, from_x ? nullptr : lsrc + nr, g.w.in * static_cast<int64_t>(sizeof(acc_t))};
          }
          constexpr acc_t kNoWeight = -std::numeric_limits<acc_t>::infinity();
          if (lr.load == LogitLoad::kGate)
            load_gated_row(isa, rl, lsrc + rows[r], hit->L.data(), kNoWeight, lr.gate);
          else if (!from_x)
            load_row(isa, rl, lsrc + rows[r], hit->L.data(), kNoWeight);
          hit->M = weight_row(isa, rl.size(), hit->L.data(), hit->X.data(), from_x ? mask.data() : nullptr,
                              lr.lam, hit->W.data(), hit->XW.data(), pf);
        }
      }
      hit->used = stamp;
      x_rows[r] = hit->X.data();
      logit_rows[r] = lsrc != nullptr ? hit->L.data() : nullptr;
      weight_rows[r] = lsrc != nullptr ? hit->W.data() : nullptr;
      xweight_rows[r] = lsrc != nullptr ? hit->XW.data() : nullptr;
      row_max[r] = lsrc != nullptr ? hit->M : acc_t(0);
    }
    return R;
  }

  // The input rows (plane offsets, in next_rows) of the output row after (od, oh) that are not
  // cached; returns their count.
  int64_t uncached_next_rows(const Geometry& g, int64_t od, int64_t oh) {
    if (++oh == g.h.out) {
      oh = 0;
      if (++od == g.d.out) return 0;
    }
    int64_t n = 0;
    for (int64_t r = 0, R = window_rows(g, od, oh, next_rows.data()); r < R; ++r) {
      bool cached = false;
      for (const Slot& sl : slots) cached = cached || sl.tag == next_rows[r];
      if (!cached) next_rows[n++] = next_rows[r];
    }
    return n;
  }

  // The row arguments, which point into this scratch: set up once per task, since building the
  // struct afresh for every output row (a zeroing `rep stos`) cost ~2% of a forward.
  RowArgs<acc_t>& args(int64_t R) {
    row_args.rows = R;
    return row_args;
  }

 private:
  RowArgs<acc_t> row_args{};

  void init_args(const Geometry& g, const RowLayout& rl) {
    RowArgs<acc_t>& a = row_args;
    a.row_stride = rl.size();
    a.phase_stride = rl.J;
    a.k = rl.k;
    a.s = rl.s;
    a.out_w = g.w.out;
    a.x_rows = x_rows.data();
    a.logit_rows = logit_rows.data();
    a.mask = mask.data();
    a.peak = peak.data();
    a.den = den.data();
    a.num = num.data();
    a.tap_weights = tap_weights.data();
    a.grad_x = grad_x.data();
    a.grad_logit = grad_logit.data();
    a.grad_lam = grad_lam.data();
    a.weight_rows = weight_rows.data();
    a.xweight_rows = xweight_rows.data();
    a.row_max = row_max.data();
    a.grad_scaled = grad_scaled.data();
    a.exact = exact.data();
  }
};

struct Inputs {
  at::Tensor x, logit, lam;  // contiguous, accumulation dtype; lam is [P] or [P, out_plane]
  at::Tensor scale, shift;   // fused norm + gate: [P] each, accumulation dtype (logit is then `pre`)
  at::Tensor mean, rstd;     // the planes' norm statistics, for the backward
  double coeff = 0;
  Weighted kind;
  int mode;  // the row kernels' RowMode, from kind and λ's layout
  bool gated() const { return scale.defined(); }
};

template <typename acc_t>
Gate<acc_t> plane_gate(const Inputs& in, int64_t p) {
  return {in.scale.data_ptr<acc_t>()[p], in.shift.data_ptr<acc_t>()[p], static_cast<acc_t>(in.coeff)};
}

template <typename acc_t, int M>
LogitRows<acc_t> logit_rows(const Inputs& in, int64_t p, const acc_t* xp, const acc_t* lp, acc_t lam) {
  const Gate<acc_t> none{acc_t(1), acc_t(0), acc_t(1)};
  if constexpr (M == kLogit) {
    if (in.gated()) return {lp, LogitLoad::kGate, plane_gate<acc_t>(in, p), acc_t(0)};
    return {lp, LogitLoad::kCopy, none, acc_t(0)};
  } else if constexpr (M == kPlaneLam) {
    return {xp, LogitLoad::kLamX, none, lam};
  }
  return {nullptr, LogitLoad::kNone, none, acc_t(0)};
}

template <typename acc_t, int M>
void forward_mode(const Inputs& in, const Geometry& g, at::Tensor& out) {
  const RowLayout rl(g.w);
  const CpuIsa isa = cpu_isa();
  const int64_t rows_per_plane = g.d.out * g.h.out;
  const int64_t total = g.planes() * rows_per_plane;
  const int64_t work = g.w.out * g.d.k * g.h.k * g.w.k;
  const acc_t* x = in.x.data_ptr<acc_t>();
  const acc_t* l = M == kLogit ? in.logit.data_ptr<acc_t>() : nullptr;
  const acc_t* lam = in.kind == Weighted::kMaxEnt ? in.lam.data_ptr<acc_t>() : nullptr;  // SoftPool: λ = 1
  acc_t* y = out.data_ptr<acc_t>();
  at::parallel_for(0, total, std::max<int64_t>(1, 16384 / std::max<int64_t>(work, 1)),
                   [&](int64_t begin, int64_t end) {
    Scratch<acc_t> s(isa, g, rl, M != kOutLam, false);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t p = t / rows_per_plane, rr = t % rows_per_plane;
      const int64_t od = rr / g.h.out, oh = rr % g.h.out;
      const acc_t plane_lam = M == kPlaneLam ? (lam ? lam[p] : acc_t(1)) : acc_t(0);
      const acc_t* xp = x + p * g.in_plane();
      const LogitRows<acc_t> lr = logit_rows<acc_t, M>(in, p, xp, l ? l + p * g.in_plane() : nullptr, plane_lam);
      const int64_t R = s.load(isa, g, rl, p, xp, lr, od, oh);
      RowArgs<acc_t>& a = s.args(R);
      a.lam = plane_lam;
      const int64_t orow = p * g.out_plane() + rr * g.w.out;
      if constexpr (M == kOutLam) a.lam_row = lam + orow;
      a.y = y + orow;
      fwd_row(isa, M, a);
    }
  });
}

// gl receives ∂L/∂logit (with a gate: ∂L/∂pre), glam ∂L/∂λ, and with a gate gnorm the per-plane
// [∂L/∂γ, ∂L/∂β] (float64).
template <typename acc_t, int M, bool GLAM>
void backward_mode(const Inputs& in, const Geometry& g, const at::Tensor& grad, at::Tensor& gx,
                   at::Tensor& gl, at::Tensor& glam, at::Tensor& gnorm) {
  const RowLayout rl(g.w);
  const CpuIsa isa = cpu_isa();
  const int64_t S = rl.size();
  const acc_t* x = in.x.data_ptr<acc_t>();
  const acc_t* l = M == kLogit ? in.logit.data_ptr<acc_t>() : nullptr;
  const acc_t* lam = in.kind == Weighted::kMaxEnt ? in.lam.data_ptr<acc_t>() : nullptr;  // SoftPool: λ = 1
  const acc_t* go = grad.data_ptr<acc_t>();
  acc_t* gxp = gx.data_ptr<acc_t>();
  acc_t* glp = M == kLogit ? gl.data_ptr<acc_t>() : nullptr;
  acc_t* glamp = GLAM ? glam.data_ptr<acc_t>() : nullptr;
  double* ggate = in.gated() ? gnorm.data_ptr<double>() : nullptr;
  at::parallel_for(0, g.planes(), 1, [&](int64_t begin, int64_t end) {
    Scratch<acc_t> s(isa, g, rl, M != kOutLam, true);
    PlaneGradRows<acc_t> out(g, rl);
    for (int64_t p = begin; p < end; ++p) {
      const acc_t plane_lam = M == kPlaneLam ? (lam ? lam[p] : acc_t(1)) : acc_t(0);
      const acc_t* xp = x + p * g.in_plane();
      const LogitRows<acc_t> lr = logit_rows<acc_t, M>(in, p, xp, l ? l + p * g.in_plane() : nullptr, plane_lam);
      out.start(gxp + p * g.in_plane(), M == kLogit ? glp + p * g.in_plane() : nullptr);
      acc_t plane_glam = 0;
      for (int64_t od = 0; od < g.d.out; ++od)
        for (int64_t oh = 0; oh < g.h.out; ++oh) {
          const int64_t R = s.load(isa, g, rl, p, xp, lr, od, oh);
          std::fill(s.grad_x.begin(), s.grad_x.begin() + R * S, acc_t(0));
          if (M == kLogit) std::fill(s.grad_logit.begin(), s.grad_logit.begin() + R * S, acc_t(0));
          RowArgs<acc_t>& a = s.args(R);
          a.lam = plane_lam;
          a.gated = in.gated();
          a.coeff = static_cast<acc_t>(in.coeff);
          const int64_t orow = p * g.out_plane() + (od * g.h.out + oh) * g.w.out;
          if constexpr (M == kOutLam) a.lam_row = lam + orow;
          a.grad = go + orow;
          bwd_row(isa, M, GLAM, a);
          for (int64_t r = 0; r < R; ++r) out.put(isa, s.rows[r], s.grad_x.data() + r * S, s.grad_logit.data() + r * S);
          if constexpr (GLAM) {
            if constexpr (M == kOutLam) {
              std::copy(s.grad_lam.begin(), s.grad_lam.begin() + g.w.out, glamp + orow);
            } else {
              for (int64_t o = 0; o < g.w.out; ++o) plane_glam += s.grad_lam[o];
            }
          }
        }
      out.finish();
      if constexpr (GLAM && M == kPlaneLam) glamp[p] = plane_glam;
      if (ggate != nullptr)  // the plane's ∂L/∂z is complete: chain it through the norm
        norm_grad_plane(isa, g.in_plane(), l + p * g.in_plane(), glp + p * g.in_plane(), lr.gate.scale,
                        in.mean.data_ptr<acc_t>()[p], in.rstd.data_ptr<acc_t>()[p], ggate + 2 * p,
                        ggate + 2 * p + 1);
    }
  });
}

Inputs prepare(Weighted kind, const at::Tensor& x, const std::optional<at::Tensor>& logit,
               const std::optional<at::Tensor>& lam, const Geometry& g) {
  const at::ScalarType acc = acc_type(x.scalar_type());
  Inputs in;
  in.x = x.to(acc).contiguous();
  in.kind = kind;
  if (kind == Weighted::kLip) {
    in.logit = logit->to(acc).contiguous();
    in.mode = kLogit;
  } else if (kind == Weighted::kSoft) {
    in.mode = kPlaneLam;
  } else {
    const WindowParam wp = window_param(*lam, g, acc);
    in.lam = wp.values;
    in.mode = wp.per_output ? kOutLam : kPlaneLam;
  }
  return in;
}

// LIP's inputs with `pre` in the logit's place, plus the planes' norm and gate.
Inputs prepare_gated(const at::Tensor& x, const at::Tensor& pre, const PlaneNorm& norm, const Geometry& g) {
  Inputs in = prepare(Weighted::kLip, x, pre, std::nullopt, g);
  in.scale = norm.scale;
  in.shift = norm.shift;
  in.mean = norm.mean;
  in.rstd = norm.rstd;
  in.coeff = norm.coeff;
  return in;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> CpuBackend::plane_stats(const at::Tensor& pre, double eps,
                                                         const Geometry& g) {
  const at::Tensor v = pre.to(acc_type(pre.scalar_type())).contiguous();
  at::Tensor mean = at::empty({g.planes()}, v.options());
  at::Tensor rstd = at::empty({g.planes()}, v.options());
  const CpuIsa isa = cpu_isa();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "lip_det_plane_stats", [&] {
    const scalar_t* vp = v.data_ptr<scalar_t>();
    scalar_t* mp = mean.data_ptr<scalar_t>();
    scalar_t* rp = rstd.data_ptr<scalar_t>();
    const int64_t n = g.in_plane();
    at::parallel_for(0, g.planes(), 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        double mu, m2;
        plane_moments(isa, n, vp + p * n, &mu, &m2);
        mp[p] = static_cast<scalar_t>(mu);
        rp[p] = static_cast<scalar_t>(1.0 / std::sqrt(m2 / static_cast<double>(n) + eps));
      }
    });
  });
  return {mean, rstd};
}

at::Tensor CpuBackend::gated_forward(const at::Tensor& x, const at::Tensor& pre, const PlaneNorm& norm,
                                     const Geometry& g) {
  const Inputs in = prepare_gated(x, pre, norm, g);
  at::Tensor out = empty_for_kernel(g.out_shape, in.x.options());
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "lip_det_gated_forward",
                             [&] { forward_mode<scalar_t, kLogit>(in, g, out); });
  return out.to(x.scalar_type());
}

GatedGrads CpuBackend::gated_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& pre,
                                      const PlaneNorm& norm, const Geometry& g) {
  const Inputs in = prepare_gated(x, pre, norm, g);
  const at::Tensor go = grad.to(in.x.scalar_type()).contiguous();
  at::Tensor gx = empty_for_kernel(in.x.sizes(), in.x.options());  // every element written in backward_mode
  at::Tensor gpre = empty_for_kernel(in.logit.sizes(), in.logit.options());
  at::Tensor gnorm = at::empty({g.planes(), 2}, in.x.options().dtype(at::kDouble));
  at::Tensor no_glam;
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "lip_det_gated_backward",
                             [&] { backward_mode<scalar_t, kLogit, false>(in, g, go, gx, gpre, no_glam, gnorm); });
  return {gx.to(x.scalar_type()), gpre.to(pre.scalar_type()), gnorm.select(1, 0), gnorm.select(1, 1)};
}

at::Tensor CpuBackend::weighted_forward(Weighted kind, const at::Tensor& x,
                                        const std::optional<at::Tensor>& logit,
                                        const std::optional<at::Tensor>& lam, const Geometry& g) {
  const Inputs in = prepare(kind, x, logit, lam, g);
  at::Tensor out = empty_for_kernel(g.out_shape, in.x.options());
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "lip_det_weighted_forward", [&] {
    switch (in.mode) {
      case kLogit: forward_mode<scalar_t, kLogit>(in, g, out); break;
      case kPlaneLam: forward_mode<scalar_t, kPlaneLam>(in, g, out); break;
      default: forward_mode<scalar_t, kOutLam>(in, g, out); break;
    }
  });
  return out.to(x.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> CpuBackend::weighted_backward(
    Weighted kind, const at::Tensor& grad, const at::Tensor& x,
    const std::optional<at::Tensor>& logit, const std::optional<at::Tensor>& lam,
    const Geometry& g) {
  const Inputs in = prepare(kind, x, logit, lam, g);
  const at::Tensor go = grad.to(in.x.scalar_type()).contiguous();
  at::Tensor gx = empty_for_kernel(in.x.sizes(), in.x.options());  // every element written in backward_mode
  at::Tensor gl = kind == Weighted::kLip ? empty_for_kernel(in.logit.sizes(), in.logit.options()) : at::Tensor();
  at::Tensor glam, no_gnorm;
  if (kind == Weighted::kMaxEnt)
    glam = in.mode == kOutLam ? at::empty({g.planes(), g.out_plane()}, in.x.options())
                              : at::empty({g.planes()}, in.x.options());
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "lip_det_weighted_backward", [&] {
    if (kind == Weighted::kLip) backward_mode<scalar_t, kLogit, false>(in, g, go, gx, gl, glam, no_gnorm);
    else if (kind == Weighted::kSoft) backward_mode<scalar_t, kPlaneLam, false>(in, g, go, gx, gl, glam, no_gnorm);
    else if (in.mode == kPlaneLam) backward_mode<scalar_t, kPlaneLam, true>(in, g, go, gx, gl, glam, no_gnorm);
    else backward_mode<scalar_t, kOutLam, true>(in, g, go, gx, gl, glam, no_gnorm);
  });
  at::Tensor second;
  if (kind == Weighted::kLip) second = gl.to(logit->scalar_type());
  else if (kind == Weighted::kMaxEnt) second = reduce_param_grad(glam, g, *lam);
  return {gx.to(x.scalar_type()), second};
}

}  // namespace lip_det

TORCH_LIBRARY_IMPL(lip_det, CPU, m) {
  lip_det::weighted_pool::Ops<lip_det::CpuBackend>::register_all(m);
}

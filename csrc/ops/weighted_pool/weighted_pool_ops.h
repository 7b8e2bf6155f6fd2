// LIP, SoftPool and Max-Entropy pooling on the host: which of the three a call is, the fused
// norm + gate's arguments, and one registration template through which each backend
// (weighted_pool_cpu.cpp, weighted_pool_cuda.cu) exposes the schemas weighted_pool.cpp defines.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "pool_args.h"

namespace lip_det {

// Which weighted pooling: LIP reads a logit tensor, the others use λ·x (λ = 1 for SoftPool).
enum class Weighted { kLip, kSoft, kMaxEnt };

// LIP with InstanceNorm and SoftGate fused (see weighted_pool.h):
// logit = coeff·σ(instance_norm(pre, weight, bias, eps)), weight and bias of shape [C].
struct NormGateArgs {
  at::Tensor weight, bias;
  double eps, coeff;
};

// The norm of every plane (accumulation dtype, [P]): its statistics and the affine map
// scale·pre + shift it amounts to (scale = γ·rstd, shift = β − scale·μ).
struct PlaneNorm {
  at::Tensor mean, rstd, scale, shift;
  double coeff;
};

// ∂L/∂x, ∂L/∂pre, and per plane ∂L/∂γ and ∂L/∂β ([P] each, summed over N by the caller).
using GatedGrads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

void check_norm_gate(const at::Tensor& x, const at::Tensor& pre, const NormGateArgs& ng,
                     const char* op);

// Per-plane norm from the backend's statistics (mean and rstd, [P]).
PlaneNorm plane_norm(const at::Tensor& mean, const at::Tensor& rstd, const NormGateArgs& ng,
                     const Geometry& g);

namespace weighted_pool {

// Declares the schemas of lip_pool2d(_gated), soft_pool{1,2,3}d, maxent_pool2d and their
// backward ops in `m`.
void define_ops(torch::Library& m);

// A backend provides these five (weighted_pool_cpu.cpp, weighted_pool_cuda.cu):
//   Tensor weighted_forward(Weighted, x, logit?, lam?, const Geometry&)
//   tuple<Tensor, Tensor> weighted_backward(Weighted, grad, x, logit?, lam?, const Geometry&)
//   tuple<Tensor, Tensor> plane_stats(pre, eps, const Geometry&)   (mean, rstd)
//   Tensor gated_forward(x, pre, const PlaneNorm&, const Geometry&)
//   GatedGrads gated_backward(grad, x, pre, const PlaneNorm&, const Geometry&)
template <class B>
struct Ops {
  using T = at::Tensor;
  using R = at::IntArrayRef;

  static T lip(const T& x, const T& l, R k, R s, R p, bool ceil) {
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, "lip_pool2d");
    check_same(x, l, "logit", true);
    return B::weighted_forward(Weighted::kLip, x, l, std::nullopt, g);
  }
  static std::tuple<T, T> lip_bwd(const T& go, const T& x, const T& l, R k, R s, R p, bool ceil) {
    const char* op = "lip_pool2d_backward";
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, op);
    check_same(x, l, "logit", true);
    check_grad_out(go, g, op);
    return B::weighted_backward(Weighted::kLip, go, x, l, std::nullopt, g);
  }
  static PlaneNorm norm_of(const T& x, const T& pre, const NormGateArgs& ng, const Geometry& g,
                           const char* op) {
    check_norm_gate(x, pre, ng, op);
    const auto stats = B::plane_stats(pre, ng.eps, g);
    return plane_norm(std::get<0>(stats), std::get<1>(stats), ng, g);
  }
  static T gated(const T& x, const T& pre, const T& weight, const T& bias, double eps, double coeff,
                 R k, R s, R p, bool ceil) {
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, "lip_pool2d_gated");
    const PlaneNorm norm = norm_of(x, pre, {weight, bias, eps, coeff}, g, "lip_pool2d_gated");
    return B::gated_forward(x, pre, norm, g);
  }
  static GatedGrads gated_bwd(const T& go, const T& x, const T& pre, const T& weight,
                              const T& bias, double eps, double coeff, R k, R s, R p, bool ceil) {
    const char* op = "lip_pool2d_gated_backward";
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, op);
    const PlaneNorm norm = norm_of(x, pre, {weight, bias, eps, coeff}, g, op);
    check_grad_out(go, g, op);
    const GatedGrads r = B::gated_backward(go, x, pre, norm, g);
    const auto per_channel = [&](const T& t, const T& like) {
      return t.view({g.n, g.c}).sum(0).to(like.scalar_type());
    };
    return {std::get<0>(r), std::get<1>(r), per_channel(std::get<2>(r), weight),
            per_channel(std::get<3>(r), bias)};
  }
  template <int ND>
  static T soft(const T& x, R k, R s, R p, bool ceil) {
    const Geometry g = checked_geometry(x, k, s, p, ceil, ND, "soft_pool");
    return B::weighted_forward(Weighted::kSoft, x, std::nullopt, std::nullopt, g);
  }
  template <int ND>
  static T soft_bwd(const T& go, const T& x, R k, R s, R p, bool ceil) {
    const char* op = "soft_pool_backward";
    const Geometry g = checked_geometry(x, k, s, p, ceil, ND, op);
    check_grad_out(go, g, op);
    return std::get<0>(B::weighted_backward(Weighted::kSoft, go, x, std::nullopt, std::nullopt, g));
  }
  static T maxent(const T& x, const T& lam, R k, R s, R p, bool ceil) {
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, "maxent_pool2d");
    check_same(x, lam, "lam", false);
    return B::weighted_forward(Weighted::kMaxEnt, x, std::nullopt, lam, g);
  }
  static std::tuple<T, T> maxent_bwd(const T& go, const T& x, const T& lam, R k, R s, R p,
                                     bool ceil) {
    const char* op = "maxent_pool2d_backward";
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, op);
    check_same(x, lam, "lam", false);
    check_grad_out(go, g, op);
    return B::weighted_backward(Weighted::kMaxEnt, go, x, std::nullopt, lam, g);
  }
  static void register_all(torch::Library& m) {
    m.impl("lip_pool2d", &lip);
    m.impl("lip_pool2d_backward", &lip_bwd);
    m.impl("lip_pool2d_gated", &gated);
    m.impl("lip_pool2d_gated_backward", &gated_bwd);
    m.impl("soft_pool1d", &soft<1>);
    m.impl("soft_pool1d_backward", &soft_bwd<1>);
    m.impl("soft_pool2d", &soft<2>);
    m.impl("soft_pool2d_backward", &soft_bwd<2>);
    m.impl("soft_pool3d", &soft<3>);
    m.impl("soft_pool3d_backward", &soft_bwd<3>);
    m.impl("maxent_pool2d", &maxent);
    m.impl("maxent_pool2d_backward", &maxent_bwd);
  }
};

}  // namespace weighted_pool
}  // namespace lip_det

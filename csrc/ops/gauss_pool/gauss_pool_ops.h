// Gaussian pooling's operators on the host: one registration template through which each
// backend (gauss_pool_cpu.cpp, gauss_pool_cuda.cu) exposes the schemas gauss_pool.cpp defines.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "pool_args.h"

namespace lip_det {
namespace gauss_pool {

// Declares gauss_pool2d and gauss_pool2d_backward in `m`.
void define_ops(torch::Library& m);

// A backend provides
//   static at::Tensor forward(const at::Tensor& x, const at::Tensor& eta, const Geometry&)
//   static std::tuple<at::Tensor, at::Tensor> backward(grad, x, eta, const Geometry&)
// (∂L/∂x, and ∂L/∂η in η's layout).
template <class B>
struct Ops {
  static at::Tensor fwd(const at::Tensor& x, const at::Tensor& eta, at::IntArrayRef k,
                        at::IntArrayRef s, at::IntArrayRef p, bool ceil) {
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, "gauss_pool2d");
    check_same(x, eta, "eta", false);
    return B::forward(x, eta, g);
  }
  static std::tuple<at::Tensor, at::Tensor> bwd(const at::Tensor& grad, const at::Tensor& x,
                                                const at::Tensor& eta, at::IntArrayRef k,
                                                at::IntArrayRef s, at::IntArrayRef p, bool ceil) {
    const char* op = "gauss_pool2d_backward";
    const Geometry g = checked_geometry(x, k, s, p, ceil, 2, op);
    check_same(x, eta, "eta", false);
    check_grad_out(grad, g, op);
    return B::backward(grad, x, eta, g);
  }
  static void register_all(torch::Library& m) {
    m.impl("gauss_pool2d", &fwd);
    m.impl("gauss_pool2d_backward", &bwd);
  }
};

}  // namespace gauss_pool
}  // namespace lip_det

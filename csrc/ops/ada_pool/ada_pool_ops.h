// adaPool's operators on the host: argument checks, β's layout, and one registration template
// through which each backend (ada_pool_cpu.cpp, ada_pool_cuda.cu) exposes the schemas that
// ada_pool.cpp defines.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "pool_args.h"

namespace lip_det {
namespace ada_pool {

// A checked call: its geometry, x contiguous, and β expanded to one value per output in x's
// accumulation dtype ([planes, out_plane], contiguous).
struct Call {
  Geometry g;
  at::Tensor x, beta;
};

Call prepare(const at::Tensor& x, const at::Tensor& beta, at::IntArrayRef kernel,
             at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode, int nd,
             const char* op);

// ∂L/∂β from its per-output values: summed over the dimensions β was broadcast along.
at::Tensor beta_grad(const at::Tensor& per_output, const Call& call, const at::Tensor& beta);

// Declares ada_pool{1,2,3}d and their backward ops in `m`.
void define_ops(torch::Library& m);

// A backend provides
//   static at::Tensor forward(const Call&)
//   static std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const Call&)
// (∂L/∂x, and ∂L/∂β per output as [planes, out_plane] in the accumulation dtype).
template <class B>
struct Ops {
  template <int ND>
  static at::Tensor fwd(const at::Tensor& x, const at::Tensor& beta, at::IntArrayRef k,
                        at::IntArrayRef s, at::IntArrayRef p, bool ceil) {
    return B::forward(prepare(x, beta, k, s, p, ceil, ND, "ada_pool"));
  }
  template <int ND>
  static std::tuple<at::Tensor, at::Tensor> bwd(const at::Tensor& grad, const at::Tensor& x,
                                                const at::Tensor& beta, at::IntArrayRef k,
                                                at::IntArrayRef s, at::IntArrayRef p, bool ceil) {
    const Call call = prepare(x, beta, k, s, p, ceil, ND, "ada_pool_backward");
    check_grad_out(grad, call.g, "ada_pool_backward");
    const auto r = B::backward(grad, call);
    return {std::get<0>(r).to(x.scalar_type()), beta_grad(std::get<1>(r), call, beta)};
  }
  static void register_all(torch::Library& m) {
    m.impl("ada_pool1d", &fwd<1>);
    m.impl("ada_pool1d_backward", &bwd<1>);
    m.impl("ada_pool2d", &fwd<2>);
    m.impl("ada_pool2d_backward", &bwd<2>);
    m.impl("ada_pool3d", &fwd<3>);
    m.impl("ada_pool3d_backward", &bwd<3>);
  }
};

}  // namespace ada_pool
}  // namespace lip_det

// LIP, SoftPool and Max-Entropy pooling's schemas (added to the lip_det library), and the fused
// norm + gate's host-side checks and per-plane affine map.
#include "ops/weighted_pool/weighted_pool_ops.h"

#include <cmath>
#include <string>
#include <vector>

namespace lip_det {

void check_norm_gate(const at::Tensor& x, const at::Tensor& pre, const NormGateArgs& ng,
                     const char* op) {
  check_same(x, pre, "pre", true);
  for (const at::Tensor* t : {&ng.weight, &ng.bias}) {
    const char* name = t == &ng.weight ? "weight" : "bias";
    check_same(x, *t, name, false);
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == x.size(1), op, ": ", name,
                      " must have shape [C] = [", x.size(1), "], got ", t->sizes());
  }
  TORCH_CHECK_VALUE(ng.eps > 0 && std::isfinite(ng.eps), op,
                    ": eps must be a positive finite number, got ", ng.eps);
  TORCH_CHECK_VALUE(ng.coeff > 0 && std::isfinite(ng.coeff), op,
                    ": coeff must be a positive finite number, got ", ng.coeff);
}

PlaneNorm plane_norm(const at::Tensor& mean, const at::Tensor& rstd, const NormGateArgs& ng,
                     const Geometry& g) {
  const auto acc = mean.scalar_type();
  const at::Tensor w = ng.weight.to(acc).view({1, g.c}).expand({g.n, g.c}).reshape({g.planes()});
  const at::Tensor b = ng.bias.to(acc).view({1, g.c}).expand({g.n, g.c}).reshape({g.planes()});
  const at::Tensor scale = w * rstd;
  return {mean, rstd, scale, b - scale * mean, ng.coeff};
}

namespace weighted_pool {

void define_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  const char* geom2 = "int[2] kernel_size, int[2] stride, int[2] padding, bool ceil_mode";
  auto def = [&](const std::string& s) { m.def(s.c_str(), tags); };
  def(std::string("lip_pool2d(Tensor x, Tensor logit, ") + geom2 + ") -> Tensor");
  def(std::string("lip_pool2d_backward(Tensor grad_out, Tensor x, Tensor logit, ") + geom2 +
      ") -> (Tensor, Tensor)");
  def(std::string("lip_pool2d_gated(Tensor x, Tensor pre, Tensor weight, Tensor bias, float eps, "
                  "float coeff, ") + geom2 + ") -> Tensor");
  def(std::string("lip_pool2d_gated_backward(Tensor grad_out, Tensor x, Tensor pre, Tensor weight, "
                  "Tensor bias, float eps, float coeff, ") +
      geom2 + ") -> (Tensor, Tensor, Tensor, Tensor)");
  for (int nd = 1; nd <= 3; ++nd) {
    const std::string n = std::to_string(nd);
    const std::string geom = "int[" + n + "] kernel_size, int[" + n + "] stride, int[" + n +
                             "] padding, bool ceil_mode";
    def("soft_pool" + n + "d(Tensor x, " + geom + ") -> Tensor");
    def("soft_pool" + n + "d_backward(Tensor grad_out, Tensor x, " + geom + ") -> Tensor");
  }
  def(std::string("maxent_pool2d(Tensor x, Tensor lam, ") + geom2 + ") -> Tensor");
  def(std::string("maxent_pool2d_backward(Tensor grad_out, Tensor x, Tensor lam, ") + geom2 +
      ") -> (Tensor, Tensor)");
}

}  // namespace weighted_pool
}  // namespace lip_det

// The emulated-CUDA test build defines the schemas in its own library (weighted_pool_cuda.cu).
#ifndef LIPDET_CUDA_EMULATION
TORCH_LIBRARY_FRAGMENT(lip_det, m) {
  m.set_python_module("lip_det.ops.table");
  lip_det::weighted_pool::define_ops(m);
}
#endif

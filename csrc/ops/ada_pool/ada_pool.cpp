// adaPool's schemas (added to the lip_det library) and its host-side argument handling.
#include "ops/ada_pool/ada_pool_ops.h"

#include <string>
#include <vector>

namespace lip_det {
namespace ada_pool {

Call prepare(const at::Tensor& x, const at::Tensor& beta, at::IntArrayRef kernel,
             at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode, int nd,
             const char* op) {
  Geometry g = checked_geometry(x, kernel, stride, padding, ceil_mode, nd, op);
  check_same(x, beta, "beta", false);
  const at::IntArrayRef out(g.out_shape);
  TORCH_CHECK_VALUE(beta.dim() <= static_cast<int64_t>(out.size()), op,
                    ": beta must broadcast to the output shape ", out, ", got ", beta.sizes());
  for (int64_t i = 1; i <= beta.dim(); ++i) {
    const int64_t b = beta.size(beta.dim() - i), o = out[out.size() - i];
    TORCH_CHECK_VALUE(b == 1 || b == o, op, ": beta must broadcast to the output shape ", out,
                      ", got ", beta.sizes());
  }
  const at::ScalarType acc = acc_type(x.scalar_type());
  at::Tensor b = beta.to(acc).expand(out).contiguous().view({g.planes(), g.out_plane()});
  return {std::move(g), x.contiguous(), std::move(b)};
}

at::Tensor beta_grad(const at::Tensor& per_output, const Call& call, const at::Tensor& beta) {
  return per_output.view(call.g.out_shape).sum_to_size(beta.sizes()).to(beta.scalar_type());
}

void define_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  for (int nd = 1; nd <= 3; ++nd) {
    const std::string n = std::to_string(nd);
    const std::string geom = "int[" + n + "] kernel_size, int[" + n + "] stride, int[" + n +
                             "] padding, bool ceil_mode";
    m.def(("ada_pool" + n + "d(Tensor x, Tensor beta, " + geom + ") -> Tensor").c_str(), tags);
    m.def(("ada_pool" + n + "d_backward(Tensor grad_out, Tensor x, Tensor beta, " + geom +
           ") -> (Tensor, Tensor)").c_str(),
          tags);
  }
}

}  // namespace ada_pool
}  // namespace lip_det

// The emulated-CUDA test build links this file into its own library (it defines the schemas
// there itself), so the lip_det fragment is left out of that build.
#ifndef LIPDET_CUDA_EMULATION
TORCH_LIBRARY_FRAGMENT(lip_det, m) {
  m.set_python_module("lip_det.ops.table");
  lip_det::ada_pool::define_ops(m);
}
#endif

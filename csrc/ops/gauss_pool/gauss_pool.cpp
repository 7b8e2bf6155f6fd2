// Gaussian pooling's schemas, added to the lip_det library.
#include "ops/gauss_pool/gauss_pool_ops.h"

#include <vector>

namespace lip_det {
namespace gauss_pool {

void define_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  m.def("gauss_pool2d(Tensor x, Tensor eta, int[2] kernel_size, int[2] stride, int[2] padding, "
        "bool ceil_mode) -> Tensor", tags);
  m.def("gauss_pool2d_backward(Tensor grad_out, Tensor x, Tensor eta, int[2] kernel_size, "
        "int[2] stride, int[2] padding, bool ceil_mode) -> (Tensor, Tensor)", tags);
}

}  // namespace gauss_pool
}  // namespace lip_det

// The emulated-CUDA test build defines the schemas in its own library (gauss_pool_cuda.cu).
#ifndef LIPDET_CUDA_EMULATION
TORCH_LIBRARY_FRAGMENT(lip_det, m) {
  m.set_python_module("lip_det.ops.table");
  lip_det::gauss_pool::define_ops(m);
}
#endif

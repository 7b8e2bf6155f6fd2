// Host-side helpers every pooling method shares (pool_args.h).
#include "pool_args.h"

#include <cmath>

namespace lip_det {

at::ScalarType acc_type(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

static int64_t pooled_size(int64_t size, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t span = size + 2 * p - k;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  // PyTorch's rule: in ceil mode the last window must start inside the input or left padding.
  if (ceil_mode && (out - 1) * s >= size + p) --out;
  return out;
}

static void check_pool_args(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride,
                            at::IntArrayRef padding, int nd, const char* op) {
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), op,
                   ": x must be float16, bfloat16, float32 or float64, got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == nd + 2, op, ": x must be ", nd + 2, "-D (N, C, spatial...), got ",
                    x.sizes());
  TORCH_CHECK_VALUE(x.numel() > 0, op, ": x must not be empty, got ", x.sizes());
  TORCH_CHECK_VALUE(static_cast<int>(kernel.size()) == nd && static_cast<int>(stride.size()) == nd &&
                        static_cast<int>(padding.size()) == nd,
                    op, ": kernel_size, stride and padding need ", nd, " values each, got ", kernel,
                    ", ", stride, ", ", padding);
  for (int i = 0; i < nd; ++i) {
    TORCH_CHECK_VALUE(kernel[i] > 0 && stride[i] > 0, op,
                      ": kernel_size and stride must be positive, got ", kernel, ", ", stride);
    TORCH_CHECK_VALUE(padding[i] >= 0 && 2 * padding[i] <= kernel[i], op,
                      ": padding must be in [0, kernel_size/2], got ", padding, " for kernel ",
                      kernel);
    TORCH_CHECK_VALUE(x.size(2 + i) + 2 * padding[i] >= kernel[i], op, ": input size ",
                      x.sizes(), " is smaller than kernel_size ", kernel, " with padding ",
                      padding);
  }
}

void check_same(const at::Tensor& x, const at::Tensor& t, const char* name, bool same_shape) {
  TORCH_CHECK_VALUE(t.device() == x.device(), name, " must be on x's device ", x.device(),
                    ", got ", t.device());
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), name, " must be floating point, got ",
                   t.scalar_type());
  if (same_shape) {
    TORCH_CHECK_VALUE(t.sizes() == x.sizes(), name, " must have x's shape ", x.sizes(), ", got ",
                      t.sizes());
    TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), name, " must have x's dtype ",
                     x.scalar_type(), ", got ", t.scalar_type());
  }
}

Geometry checked_geometry(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride,
                          at::IntArrayRef padding, bool ceil_mode, int nd, const char* op) {
  check_pool_args(x, kernel, stride, padding, nd, op);
  Geometry g;
  g.nd = nd;
  g.n = x.size(0);
  g.c = x.size(1);
  Dim dims[3] = {{1, 1, 1, 1, 0}, {1, 1, 1, 1, 0}, {1, 1, 1, 1, 0}};
  g.out_shape = {g.n, g.c};
  for (int i = 0; i < nd; ++i) {
    Dim& d = dims[3 - nd + i];
    d.in = x.size(2 + i);
    d.k = kernel[i];
    d.s = stride[i];
    d.p = padding[i];
    d.out = pooled_size(d.in, d.k, d.s, d.p, ceil_mode);
    g.out_shape.push_back(d.out);
  }
  g.d = dims[0];
  g.h = dims[1];
  g.w = dims[2];
  return g;
}

void check_grad_out(const at::Tensor& grad_out, const Geometry& g, const char* op) {
  const at::IntArrayRef out(g.out_shape);
  TORCH_CHECK_VALUE(grad_out.sizes() == out, op, ": grad_out must have shape ", out, ", got ",
                    grad_out.sizes());
}

WindowParam window_param(const at::Tensor& t, const Geometry& g, at::ScalarType acc) {
  const int64_t nd = g.nd;
  if (t.dim() == nd + 2 && t.sizes() == at::IntArrayRef(g.out_shape) && g.out_plane() > 1)
    return {t.to(acc).contiguous().view({g.planes(), g.out_plane()}), true};
  const bool scalar = t.dim() == 1 && t.numel() == 1;
  bool per_plane = t.dim() == nd + 2 && (t.size(0) == 1 || t.size(0) == g.n) &&
                   (t.size(1) == 1 || t.size(1) == g.c);
  for (int64_t i = 2; per_plane && i < t.dim(); ++i) per_plane = t.size(i) == 1;
  TORCH_CHECK_VALUE(scalar || per_plane,
                    "per-window parameter (lam/eta) must have shape [1], [1, C, 1, 1], "
                    "[N, C, 1, 1], [N, 1, 1, 1] or [N, C, out...] = ", at::IntArrayRef(g.out_shape),
                    ", got ", t.sizes());
  const at::Tensor t2 = scalar ? t.reshape({1, 1}) : t.reshape({t.size(0), t.size(1)});
  return {t2.to(acc).expand({g.n, g.c}).contiguous().view({g.planes()}), false};
}

at::Tensor reduce_param_grad(const at::Tensor& grad, const Geometry& g, const at::Tensor& like) {
  if (grad.numel() == g.planes() * g.out_plane() && g.out_plane() > 1 &&
      like.sizes() == at::IntArrayRef(g.out_shape))
    return grad.view(g.out_shape).to(like.scalar_type());
  std::vector<int64_t> shape = {g.n, g.c};
  shape.resize(g.nd + 2, 1);
  return grad.view(shape).sum_to_size(like.sizes()).to(like.scalar_type());
}

}  // namespace lip_det

// Host-side helpers every pooling method shares: the window geometry of a call, argument checks
// of the raw torch.ops entry points, the accumulation dtype, and the layouts of a per-window
// parameter (λ, η) and of its gradient.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "pool_common.h"

namespace lip_det {

struct Geometry {
  int nd;
  int64_t n, c;
  Dim d, h, w;  // unused leading dims have in = out = k = s = 1, p = 0
  std::vector<int64_t> out_shape;  // (N, C, out...)
  int64_t planes() const { return n * c; }
  int64_t in_plane() const { return d.in * h.in * w.in; }
  int64_t out_plane() const { return d.out * h.out * w.out; }
  PlaneShape plane_shape() const { return {d, h, w, in_plane(), out_plane()}; }
};

// The window geometry of a raw torch.ops call, after checking x and the window arguments (the
// Python API validates first; these checks keep direct callers from reading out of bounds).
Geometry checked_geometry(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride,
                          at::IntArrayRef padding, bool ceil_mode, int nd, const char* op);

// grad_out of a backward entry point must have the forward output's shape.
void check_grad_out(const at::Tensor& grad_out, const Geometry& g, const char* op);

// λ or η as a contiguous tensor of `acc` dtype: [P] (one value per plane) or [P, out_plane].
struct WindowParam {
  at::Tensor values;
  bool per_output;
};

WindowParam window_param(const at::Tensor& t, const Geometry& g, at::ScalarType acc);

// Sum a per-plane [P] or per-output [N, C, out...] gradient to the layout of `like`.
at::Tensor reduce_param_grad(const at::Tensor& grad, const Geometry& g, const at::Tensor& like);

// Float32 for half types, the tensor's own dtype otherwise.
at::ScalarType acc_type(at::ScalarType t);

// A second input tensor `name` of an entry point: on x's device, floating point, and with
// same_shape also x's shape and dtype.
void check_same(const at::Tensor& x, const at::Tensor& t, const char* name, bool same_shape);

}  // namespace lip_det

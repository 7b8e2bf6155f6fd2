// Geometry and numeric helpers shared by every pooling kernel, on the host and on the device.
//
// All ops are computed as 3-D pooling over (D, H, W) planes: a 2-D op uses D = 1, a 1-D op
// uses D = H = 1. Windows follow PyTorch's pooling geometry; a window's *valid* pixels are the
// ones inside the unpadded input, and every average in this library is over valid pixels only.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define LIPDET_HD __host__ __device__ __forceinline__
#else
// Internal linkage: the CPU row kernels are compiled once per instruction set (cpu/rows_*.cpp)
// and each copy must keep its own inlined math.
#define LIPDET_HD static inline
#endif

namespace lip_det {

// One pooled dimension.
struct Dim {
  int64_t in, out, k, s, p;
};

// First valid input index of output o's window.
LIPDET_HD int64_t win_begin(const Dim& d, int64_t o) {
  const int64_t b = o * d.s - d.p;
  return b < 0 ? 0 : b;
}

// One past the last valid input index of output o's window.
LIPDET_HD int64_t win_end(const Dim& d, int64_t o) {
  const int64_t e = o * d.s - d.p + d.k;
  return e > d.in ? d.in : e;
}

// Smallest output whose window covers input i (window o covers [o*s-p, o*s-p+k)).
LIPDET_HD int64_t cover_first(const Dim& d, int64_t i) {
  const int64_t t = i + d.p - d.k + 1;
  return t <= 0 ? 0 : (t + d.s - 1) / d.s;
}

// One past the largest output whose window covers input i.
LIPDET_HD int64_t cover_end(const Dim& d, int64_t i) {
  const int64_t o = (i + d.p) / d.s + 1;
  return o < d.out ? o : d.out;
}

// The pooled planes as a kernel sees them: the three window dimensions and the sizes of one
// input and one output plane (a tensor is N·C such planes, one after another).
struct PlaneShape {
  Dim d, h, w;
  int64_t in_plane, out_plane;
};

// Position inside a plane.
struct Index3 {
  int64_t d, h, w;
};

// Where flat index i of one output plane (output = true) or input plane lies.
LIPDET_HD Index3 plane_index(const PlaneShape& s, int64_t i, bool output) {
  const int64_t W = output ? s.w.out : s.w.in, H = output ? s.h.out : s.h.in;
  return {i / (W * H), (i / W) % H, i % W};
}

LIPDET_HD float bits_to_float(int32_t b) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
#endif
}

LIPDET_HD int32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(f);
#else
  int32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
#endif
}

// e^x for x <= 0 (a logit minus its window maximum), branch-free so the CPU loops vectorise
// and bit-identical on host and device. Cephes' expf polynomial: < 2 ulp on [-87, 0]; below
// -87 the result is 0 (the window's maximum term is 1, so the lost mass is < 1e-37). NaN
// propagates.
LIPDET_HD float exp_nonpos(float x) {
  const float lo = -87.0f;
  const bool under = x < lo;
  const float xc = under ? lo : x;
  // Round x·log2(e) to the nearest integer n with the 1.5·2^23 trick; n sits in the low bits.
  const float magic = 12582912.0f;
  const float t = xc * 1.44269504088896341f + magic;
  const float n = t - magic;
  const int32_t ni = float_to_bits(t) - float_to_bits(magic);
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * z + r + 1.0f;
  const float res = q * bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(ni + 127) << 23));
  return under ? 0.0f : res;
}

LIPDET_HD double exp_nonpos(double x) {
  return ::exp(x);
}

}  // namespace lip_det

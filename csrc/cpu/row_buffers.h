// What every method's CPU kernels share around the row kernels: cache-line aligned row buffers,
// output allocation, the row load / store entry points, and the gradient scatter of one plane.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "cpu/row_args.h"
#include "pool_args.h"

namespace lip_det {

// Row buffers start on a cache line, so that the phases of a RowLayout do too.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

template <typename T>
using RowBuffer = std::vector<T, CacheLineAllocator<T>>;

// at::empty for a tensor the kernels fill; large ones are backed by transparent huge pages
// where the OS allows (kernel_memory.cpp).
at::Tensor empty_for_kernel(at::IntArrayRef shape, const at::TensorOptions& options);

template <typename acc_t>
void load_row(CpuIsa isa, const RowLayout& rl, const acc_t* src, acc_t* dst, acc_t fill) {
  LIPDET_ROWS_DISPATCH(isa, load_row(rl, src, dst, fill))
}

template <typename acc_t>
void mask_row(CpuIsa isa, const RowLayout& rl, acc_t* dst, acc_t fill) {
  LIPDET_ROWS_DISPATCH(isa, mask_row(rl, dst, fill))
}

// Scatter a row-layout gradient back to an input row: dst += buf, or dst = buf when not
// `accumulate` (the row's first contribution; only valid when rl.covers). See PlaneGradRows.
template <typename acc_t>
void put_row(CpuIsa isa, const RowLayout& rl, const acc_t* buf, acc_t* dst, bool accumulate) {
  LIPDET_ROWS_DISPATCH(isa, put_row(rl, buf, dst, accumulate))
}

// Writes the input gradients of one plane (one or two tensors, e.g. ∂x and ∂logit) from the
// row-layout buffers of each output row, without a zeroing pass: an input row's first
// contribution is stored and later ones added; rows no window covers are zeroed by finish().
// Where some columns lie in no window (s > k, or past the last window) a row is zeroed before its
// first contribution instead.
template <typename acc_t>
class PlaneGradRows {
 public:
  PlaneGradRows(const Geometry& g, const RowLayout& rl) : rl_(rl), width_(g.w.in), written_(g.d.in * g.h.in) {}

  // The planes (offset 0 of each) the next put() and finish() write; dst[1] may be null.
  void start(acc_t* dst0, acc_t* dst1) {
    dst_[0] = dst0;
    dst_[1] = dst1;
    std::fill(written_.begin(), written_.end(), 0);
  }

  // Add buf0 (and buf1) to the input row at plane offset `row`.
  void put(CpuIsa isa, int64_t row, const acc_t* buf0, const acc_t* buf1) {
    const bool first = !written_[row / width_];
    written_[row / width_] = 1;
    if (first && !rl_.covers) zero(row);
    const bool accumulate = !first || !rl_.covers;
    put_row(isa, rl_, buf0, dst_[0] + row, accumulate);
    if (dst_[1] != nullptr) put_row(isa, rl_, buf1, dst_[1] + row, accumulate);
  }

  // Zero the rows no window reached.
  void finish() {
    for (int64_t r = 0; r < static_cast<int64_t>(written_.size()); ++r)
      if (!written_[r]) zero(r * width_);
  }

 private:
  void zero(int64_t row) {
    for (acc_t* d : dst_)
      if (d != nullptr) std::fill(d + row, d + row + width_, acc_t(0));
  }

  const RowLayout& rl_;
  int64_t width_;
  std::vector<uint8_t> written_;
  acc_t* dst_[2] = {nullptr, nullptr};
};

// The valid (d, h) input rows of output row (od, oh) as offsets into a plane.
inline int64_t window_rows(const Geometry& g, int64_t od, int64_t oh, int64_t* rows) {
  int64_t r = 0;
  for (int64_t d = win_begin(g.d, od); d < win_end(g.d, od); ++d)
    for (int64_t h = win_begin(g.h, oh); h < win_end(g.h, oh); ++h) rows[r++] = (d * g.h.in + h) * g.w.in;
  return r;
}

}  // namespace lip_det

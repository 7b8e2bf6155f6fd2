// Output memory of the CPU kernels.
#include "cpu/row_buffers.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <cstdint>

namespace lip_det {

at::Tensor empty_for_kernel(at::IntArrayRef shape, const at::TensorOptions& options) {
  at::Tensor t = at::empty(shape, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // A fresh large tensor is untouched mmap'd memory: its first write takes one page fault per
  // 4 KiB page, which cost ~15 ms of an ~80 ms LIP forward at 2x64x400x672 on one thread.
  // Advised onto transparent huge pages (the kernel's default mode is `madvise`), it faults once
  // per 2 MiB. Best effort: an error (no THP, memory reused from the heap) changes nothing.
  constexpr int64_t kMinBytes = 4 << 20;
  const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
  if (bytes >= kMinBytes) {
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<uintptr_t>(t.data_ptr()) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<uintptr_t>(t.data_ptr()) + bytes) & ~(page - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
  return t;
}

}  // namespace lip_det

// Row kernels for the baseline instruction set of the build.
#define LIPDET_ROW_NS rows_default
#include "cpu/row_kernels.h"

#include <cstdlib>
#include <cstring>

namespace lip_det {

static CpuIsa best_isa() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kDefault;
}

CpuIsa cpu_isa() {
  static const CpuIsa best = best_isa();
  const char* v = std::getenv("LIP_DET_CPU_ISA");
  if (v == nullptr || *v == '\0') return best;
  CpuIsa want = best;
  if (std::strcmp(v, "default") == 0) want = CpuIsa::kDefault;
  // Never more than the CPU has: an unsupported request runs the best supported build.
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

}  // namespace lip_det

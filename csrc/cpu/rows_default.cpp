// Row kernels for the baseline instruction set of the build, and the choice of build per call.
#define LIPDET_ROW_NS rows_default
#include "cpu/row_kernels.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

namespace lip_det {

static CpuIsa best_isa() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return CpuIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kDefault;
}

CpuIsa cpu_isa() {
  static const CpuIsa best = best_isa();
  const char* v = std::getenv("LIP_DET_CPU_ISA");
  if (v == nullptr || *v == '\0') return best;
  CpuIsa want;
  if (std::strcmp(v, "default") == 0) want = CpuIsa::kDefault;
  else if (std::strcmp(v, "avx2") == 0) want = CpuIsa::kAvx2;
  else if (std::strcmp(v, "avx512") == 0) want = CpuIsa::kAvx512;
  else TORCH_CHECK_VALUE(false, "LIP_DET_CPU_ISA must be empty, 'default', 'avx2' or 'avx512', got '", v, "'");
  // Never more than the CPU has: an unsupported request runs the best supported build.
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

}  // namespace lip_det

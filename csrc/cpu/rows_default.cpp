// Row kernels for the baseline instruction set of the build.
#define LIPDET_ROW_NS rows_default
#include "cpu/row_kernels.h"

namespace lip_det {

bool cpu_has_avx2() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

}  // namespace lip_det

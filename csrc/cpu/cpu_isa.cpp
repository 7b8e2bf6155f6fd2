// Which build of the CPU row kernels runs (rows_default / rows_avx2 / rows_avx512).
//
// Decided once per process: the best build the CPU supports, capped by LIP_DET_CPU_ISA
// (default|avx2|avx512) when the first kernel asks. `lip_det::set_cpu_isa` changes it at run
// time, so that one test process can run every build and a user can pin one without restarting.
#include "cpu/row_args.h"

#include <c10/util/Exception.h>
#include <torch/library.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace lip_det {
namespace {

constexpr int kUndecided = -1;
std::atomic<int> chosen_isa{kUndecided};

CpuIsa best_isa() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return CpuIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kDefault;
}

// The build for a requested name: never more than the CPU has (an unsupported request runs the
// best supported build); "" means the best.
CpuIsa capped_isa(const std::string& name, const char* what) {
  static const CpuIsa best = best_isa();
  if (name.empty()) return best;
  CpuIsa want;
  if (name == "default") want = CpuIsa::kDefault;
  else if (name == "avx2") want = CpuIsa::kAvx2;
  else if (name == "avx512") want = CpuIsa::kAvx512;
  else TORCH_CHECK_VALUE(false, what, " must be empty, 'default', 'avx2' or 'avx512', got '", name, "'");
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512: return "avx512";
    case CpuIsa::kAvx2: return "avx2";
    default: return "default";
  }
}

std::string set_cpu_isa_op(std::string name) {
  const CpuIsa isa = capped_isa(name, "set_cpu_isa(name)");
  chosen_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa_name(isa);
}

std::string get_cpu_isa_op() { return isa_name(cpu_isa()); }

}  // namespace

CpuIsa cpu_isa() {
  int isa = chosen_isa.load(std::memory_order_relaxed);
  if (isa == kUndecided) {
    // A bad value is not cached: every op call reports it until it is fixed or overridden.
    const char* v = std::getenv("LIP_DET_CPU_ISA");
    isa = static_cast<int>(capped_isa(v == nullptr ? "" : v, "LIP_DET_CPU_ISA"));
    int expected = kUndecided;
    if (!chosen_isa.compare_exchange_strong(expected, isa)) isa = expected;
  }
  return static_cast<CpuIsa>(isa);
}

TORCH_LIBRARY_FRAGMENT(lip_det, m) {
  m.def("set_cpu_isa(str name) -> str", &set_cpu_isa_op);
  m.def("get_cpu_isa() -> str", &get_cpu_isa_op);
}

}  // namespace lip_det

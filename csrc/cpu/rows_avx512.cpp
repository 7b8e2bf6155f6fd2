// Row kernels compiled for AVX-512 (F, VL, BW, DQ) with 512-bit vectors, used when cpu_isa() says
// so. The exp pass and the window sums are bound by arithmetic throughput, so twice the lanes of
// the AVX2 build pay here; GCC would keep 256-bit vectors without prefer-vector-width=512.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <algorithm>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")
#elif defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq"))), \
                             apply_to = function)
#define LIPDET_CLANG_POP
#endif

#define LIPDET_ROW_NS rows_avx512
#include "cpu/row_kernels.h"

#ifdef LIPDET_CLANG_POP
#pragma clang attribute pop
#endif

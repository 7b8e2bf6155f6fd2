// Row kernels compiled for AVX2 + FMA (used when cpu_isa() says so). Standard headers are
// included before the target pragma so their inline functions keep the baseline ISA.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <algorithm>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx2,fma")
#elif defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define LIPDET_CLANG_POP
#endif

#define LIPDET_ROW_NS rows_avx2
#include "cpu/row_kernels.h"

#ifdef LIPDET_CLANG_POP
#pragma clang attribute pop
#endif

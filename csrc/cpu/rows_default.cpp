// Row kernels for the baseline instruction set of the build (cpu/cpu_isa.cpp picks a build).
#define LIPDET_ROW_NS rows_default
#include "cpu/row_kernels.h"

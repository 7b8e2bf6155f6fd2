// The operator library lip_det: schemas (ops.cpp: define_ops) and the Python module that holds
// their fake (meta) kernels and autograd formulas (lip_det/ops/table.py, which registers them for
// every entry of the op table; importing it imports every method's module). The backends register
// their kernels with TORCH_LIBRARY_IMPL (cpu/weighted_pool_cpu.cpp, cuda/pool_cuda.cu).
#include <Python.h>

#include <torch/library.h>

#include "pool_ops.h"

TORCH_LIBRARY(lip_det, m) {
  m.set_python_module("lip_det.ops.table");
  lip_det::define_ops(m);
}

// An importable Python module, so `import lip_det._C` runs the registrations above.
extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "lip_det fused pooling operators",
                                   -1, nullptr};
  return PyModule_Create(&def);
}

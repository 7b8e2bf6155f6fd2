// The operator library lip_det and the Python module that holds its ops' fake (meta) kernels
// and autograd formulas (lip_det/ops/table.py, which registers them for every entry of the op
// table; importing it imports every method's module). Each method adds its schemas with a
// TORCH_LIBRARY_FRAGMENT in its own home (ops/<method>/<method>.cpp) and its kernels with
// TORCH_LIBRARY_IMPL in its CPU and CUDA files.
#include <Python.h>

#include <torch/library.h>

TORCH_LIBRARY(lip_det, m) {
  m.set_python_module("lip_det.ops.table");
}

// An importable Python module, so `import lip_det._C` runs the registrations above.
extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "lip_det fused pooling operators",
                                   -1, nullptr};
  return PyModule_Create(&def);
}

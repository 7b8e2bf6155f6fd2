"""Build lip_det._C in place (``python setup.py build_ext --inplace``), compiling in parallel even
without ninja.

torch's BuildExtension compiles with ninja, MAX_JOBS sources at a time, when ninja is installed.
Without it, it falls back to distutils, which compiles one source after another: several minutes
for csrc/, on a GPU machine whose time is rationed (tools/gpu_check.sh). Then this wrapper
compiles the C++ sources MAX_JOBS at a time itself. The CUDA sources still go one at a time, first:
for each .cu file torch swaps the compiler executable on the one compiler object all threads
share, so a C++ source compiled meanwhile would go to nvcc.

No network and no build isolation: it compiles against the torch that runs it. Environment as
for setup.py (FORCE_CUDA, TORCH_CUDA_ARCH_LIST, CUDA_HOME, MAX_JOBS); LIPDET_BUILD_NO_NINJA=1
takes the fallback path even where ninja is installed (to test it).

    python tools/build_inplace.py
"""
from __future__ import annotations

import os
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parallel_distutils_compile(jobs: int) -> None:
    """Make distutils' CCompiler.compile run its per-source _compile calls on `jobs` threads."""
    import setuptools  # noqa: F401  (first: its distutils is the one `distutils` names then)
    from distutils import ccompiler

    def compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                extra_preargs=None, extra_postargs=None, depends=None):
        # The body of CCompiler.compile, with the loop over sources parallel.
        macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
            output_dir, macros, include_dirs, sources, depends, extra_postargs)
        cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)
        todo = [(obj,) + tuple(build[obj]) for obj in objects if obj in build]  # the rest is up to date

        def one(item):
            obj, src, ext = item
            self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

        for item in todo:
            if item[1].endswith('.cu'):
                one(item)
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(one, [item for item in todo if not item[1].endswith('.cu')]))
        return objects

    ccompiler.CCompiler.compile = compile


def main() -> int:
    import torch.utils.cpp_extension as cpp
    jobs = int(os.environ.get('MAX_JOBS') or os.cpu_count() or 1)
    if os.environ.get('LIPDET_BUILD_NO_NINJA') == '1':
        cpp.is_ninja_available = lambda: False  # BuildExtension looks it up when constructed
    if cpp.is_ninja_available():
        print(f'build_inplace: ninja, MAX_JOBS={jobs}', flush=True)
    else:
        print(f'build_inplace: no ninja; distutils with {jobs} parallel C++ compiles', flush=True)
        # Each C++ compile also resets the executable, to itself prefixed by ccache when ccache is
        # installed: concurrently, one thread's prefixed value would be the next one's original.
        os.environ['TORCH_NO_COMPILER_WRAPPER'] = '1'
        _parallel_distutils_compile(jobs)
    os.chdir(ROOT)
    sys.argv = ['setup.py', 'build_ext', '--inplace']
    try:
        runpy.run_path(os.path.join(ROOT, 'setup.py'), run_name='__main__')
    except SystemExit as exc:  # setup() exits with a message on a compile error
        if exc.code not in (None, 0):
            print(f'build_inplace: failed: {exc.code}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

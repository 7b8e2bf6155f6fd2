"""Install lip-det; builds the fused pooling operators (lip_det._C) from csrc/.

The CPU extension is always built. The CUDA kernels are added when a CUDA toolkit and a CUDA
build of torch are present, or when FORCE_CUDA=1. Build without isolation so the extension is
compiled against the torch that is installed: ``pip install --no-build-isolation -e .``.
"""
import glob
import os
import re
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    with open(os.path.join(ROOT, 'lip_det', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name: str) -> list:
    with open(os.path.join(ROOT, 'requirements', name)) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


def get_extensions() -> list:
    """The lip_det._C extension: CPU sources always, CUDA sources when a toolkit is usable."""
    # One home per method: csrc/ops/<method>/ holds its schemas, CPU and CUDA kernels.
    sources = sorted(glob.glob(os.path.join('csrc', '*.cpp')) +
                     glob.glob(os.path.join('csrc', 'cpu', '*.cpp')) +
                     glob.glob(os.path.join('csrc', 'ops', '*', '*.cpp')))
    if not sources:
        return []
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension
    except ImportError:
        # An isolated build env has no torch: install the pure-Python package; the ops then
        # fall back to plain PyTorch with a warning. Use --no-build-isolation to get the kernels.
        print('lip-det: torch is not importable at build time; skipping the lip_det._C extension')
        return []

    torch_version = tuple(int(v) for v in re.findall(r'\d+', torch.__version__)[:2])
    # torch 2.14 headers need C++20; 2.13 still accepts C++17.
    cxx_flags = ['-O3', '-std=c++20', '-fno-math-errno', '-fno-trapping-math']
    link_flags = []
    if sys.platform.startswith('linux'):
        # ATen's at::parallel_for is an inline `#pragma omp parallel` in its headers: without
        # -fopenmp the kernels compile fine but run on one thread.
        cxx_flags.append('-fopenmp')
        link_flags.append('-fopenmp')
    define_macros = []
    # csrc/cuda/ holds only the headers the kernels share.
    cuda_sources = sorted(glob.glob(os.path.join('csrc', 'ops', '*', '*.cu')))
    use_cuda = os.environ.get('FORCE_CUDA') == '1' or (
        torch.version.cuda is not None and CUDA_HOME is not None and
        (torch.cuda.is_available() or os.environ.get('FORCE_CUDA') == '1'))
    if use_cuda and cuda_sources:
        define_macros.append(('WITH_CUDA', None))
        return [CUDAExtension('lip_det._C', sources + cuda_sources, include_dirs=[os.path.join(ROOT, 'csrc')],
                              define_macros=define_macros,
                              extra_compile_args={'cxx': cxx_flags, 'nvcc': ['-O3', '-std=c++20']},
                              extra_link_args=link_flags)]
    return [CppExtension('lip_det._C', sources, include_dirs=[os.path.join(ROOT, 'csrc')],
                         define_macros=define_macros, extra_compile_args={'cxx': cxx_flags},
                         extra_link_args=link_flags)]


def cmdclass() -> dict:
    try:
        from torch.utils.cpp_extension import BuildExtension
    except ImportError:
        return {}
    return {'build_ext': BuildExtension.with_options(use_ninja=True)}


setup(
    name='lip-det',
    version=read_version(),
    description='Learnable pooling (LIP, SoftPool, Max-Entropy, Gaussian) backbones and fused '
    'operators for MMDetection 3.x',
    long_description=open(os.path.join(ROOT, 'README.md')).read() if os.path.exists(
        os.path.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['lip_det', 'lip_det.*']),
    install_requires=read_requirements('runtime.txt') + ['torch'],
    # 'pretrain' is optional: mmpretrain for GPU users with a working torchvision (mmpretrain
    # imports it). Nothing here needs it: lip_det.classification pretrains on mmengine alone.
    extras_require={'tests': read_requirements('tests.txt'), 'pretrain': ['mmpretrain>=1.2.0']},
    ext_modules=get_extensions(),
    cmdclass=cmdclass(),
    zip_safe=False,
)

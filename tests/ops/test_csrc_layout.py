"""The C++ sources keep one home per method: a method's files include only its own home and the
shared library, and the shared library includes no method, except row_kernels.h's one line per
row-kernel method (which compiles those kernels into each instruction-set build)."""
import os.path as osp
import re
from pathlib import Path

CSRC = Path(__file__).resolve().parents[2] / 'csrc'
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def _includes(path: Path) -> list:
    return INCLUDE.findall(path.read_text())


def _sources(root: Path) -> list:
    return sorted(p for p in root.rglob('*') if p.suffix in ('.h', '.cpp', '.cu'))


def test_a_method_includes_only_its_own_home():
    homes = sorted(p for p in (CSRC / 'ops').iterdir() if p.is_dir())
    assert {h.name for h in homes} >= {'weighted_pool', 'gauss_pool', 'ada_pool'}
    for home in homes:
        for src in _sources(home):
            for inc in _includes(src):
                if inc.startswith('ops/'):
                    assert inc.startswith(f'ops/{home.name}/'), f'{src}: includes {inc}'


def test_the_shared_library_includes_no_method():
    shared = [p for p in _sources(CSRC) if not p.is_relative_to(CSRC / 'ops')]
    assert any(p.name == 'row_kernels.h' for p in shared)
    for src in shared:
        for inc in _includes(src):
            if not inc.startswith('ops/'):
                continue
            method = inc.split('/')[1]
            assert src.name == 'row_kernels.h' and inc == f'ops/{method}/{method}_row_kernels.h', \
                f'{osp.relpath(src, CSRC)}: includes {inc}'

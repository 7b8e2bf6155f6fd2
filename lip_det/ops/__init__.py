"""Learnable pooling operators: LIP, SoftPool, Max-Entropy, Gaussian pooling and adaPool.

Each method lives in its own module (``lip.py``, ``soft_pool.py``, ``max_ent.py``,
``gaussian.py``, ``ada_pool.py``) and declares its operators in ``table.OPS``.
"""
from ._args import pool_output_size
from ._backend import backend, cpu_isa, fused_available, set_cpu_isa
from .ada_pool import (ada_pool1d, ada_pool2d, ada_pool3d, edscw_pool1d, edscw_pool2d,
                       edscw_pool3d, em_pool1d, em_pool2d, em_pool3d)
from .gaussian import gauss_pool2d
from .lip import lip_pool2d, lip_pool2d_gated
from .max_ent import maxent_pool2d
from .soft_pool import soft_pool1d, soft_pool2d, soft_pool3d

__all__ = [
    'lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d',
    'maxent_pool2d', 'gauss_pool2d', 'ada_pool1d', 'ada_pool2d', 'ada_pool3d', 'edscw_pool1d',
    'edscw_pool2d', 'edscw_pool3d', 'em_pool1d', 'em_pool2d', 'em_pool3d', 'fused_available',
    'backend', 'cpu_isa', 'set_cpu_isa', 'pool_output_size'
]

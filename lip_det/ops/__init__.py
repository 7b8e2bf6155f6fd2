"""Learnable pooling operators: LIP, SoftPool, Max-Entropy, Gaussian pooling and adaPool."""
from .ada_pool import (ada_pool1d, ada_pool2d, ada_pool3d, edscw_pool1d, edscw_pool2d,
                       edscw_pool3d, em_pool1d, em_pool2d, em_pool3d)
from .pooling import (backend, fused_available, gauss_pool2d, lip_pool2d, lip_pool2d_gated,
                      maxent_pool2d, pool_output_size, soft_pool1d, soft_pool2d, soft_pool3d)

__all__ = [
    'lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d',
    'maxent_pool2d', 'gauss_pool2d', 'ada_pool1d', 'ada_pool2d', 'ada_pool3d', 'edscw_pool1d',
    'edscw_pool2d', 'edscw_pool3d', 'em_pool1d', 'em_pool2d', 'em_pool3d', 'fused_available',
    'backend', 'pool_output_size'
]

"""Learnable pooling operators: LIP, SoftPool, Max-Entropy and Gaussian pooling."""
from .pooling import (backend, fused_available, gauss_pool2d, lip_pool2d, lip_pool2d_gated,
                      maxent_pool2d, pool_output_size, soft_pool1d, soft_pool2d, soft_pool3d)

__all__ = [
    'lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d',
    'maxent_pool2d', 'gauss_pool2d', 'fused_available', 'backend', 'pool_output_size'
]

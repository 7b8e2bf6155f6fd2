"""Data sets shipped with the plugin: the deterministic synthetic COCO-format set."""
from .synthetic_coco import (CLASSES, LARGE_MIN_AREA, SMALL_MAX_AREA, SyntheticCocoConfig,
                             dataset_digest, generate_synthetic_coco, parse_size_fractions,
                             size_histogram)

__all__ = ['CLASSES', 'SyntheticCocoConfig', 'generate_synthetic_coco', 'size_histogram',
           'dataset_digest', 'parse_size_fractions', 'SMALL_MAX_AREA', 'LARGE_MIN_AREA']

"""Data sets shipped with the plugin: the deterministic synthetic COCO-format detection set and
its classification counterpart in ImageNet folder layout."""
from .synthetic_coco import (CLASSES, LARGE_MIN_AREA, SMALL_MAX_AREA, SyntheticCocoConfig,
                             dataset_digest, generate_synthetic_coco, parse_size_fractions,
                             size_histogram)
from .synthetic_imagenet import SyntheticImageNetConfig, generate_synthetic_imagenet

__all__ = ['CLASSES', 'SyntheticCocoConfig', 'generate_synthetic_coco', 'size_histogram',
           'dataset_digest', 'parse_size_fractions', 'SMALL_MAX_AREA', 'LARGE_MIN_AREA',
           'SyntheticImageNetConfig', 'generate_synthetic_imagenet']

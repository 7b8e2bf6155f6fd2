"""COCO evaluation helpers: the small-object gain table, multi-seed statistics, error modes."""
from .small_objects import (METRICS, TINY_MAX_AREA, DetectionInputError, RunResult, compare_runs,
                            evaluate_detections, find_results_file, format_table, gt_size_counts,
                            load_detections, load_ground_truth)

__all__ = ['METRICS', 'TINY_MAX_AREA', 'DetectionInputError', 'RunResult', 'compare_runs',
           'evaluate_detections', 'find_results_file', 'format_table', 'gt_size_counts',
           'load_detections', 'load_ground_truth']

"""COCO evaluation helpers: the small-object gain table."""
from .small_objects import (METRICS, RunResult, compare_runs, evaluate_detections, find_results_file,
                            format_table, gt_size_counts, load_detections)

__all__ = ['METRICS', 'RunResult', 'compare_runs', 'evaluate_detections', 'find_results_file',
           'format_table', 'gt_size_counts', 'load_detections']

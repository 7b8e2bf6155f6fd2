#!/usr/bin/env python
"""Compare detectors on COCO AP, AP50, AP75, AP_S, AP_M, AP_L, AP_tiny with deltas against the first.

    python tools/analyze_small_objects.py --ann-file GT.json RUN [RUN ...] [--names ...] [--per-class]

A RUN is a COCO result json (e.g. ``<prefix>.bbox.json`` from CocoMetric's ``outfile_prefix``),
the pickle of ``tools/test.py CONFIG CKPT --out results.pkl``, or a work dir holding either.
Every run is scored with pycocotools against the same GT file. A run with instance masks (a
COCO result json with RLE 'segmentation', e.g. ``<prefix>.segm.json``, or a Mask R-CNN
results.pkl) is also scored with iouType='segm': 'segm AP' ... rows follow the 'bbox AP' ones.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('runs', nargs='+', metavar='RUN',
                        help='result json / results.pkl / work dir; the first is the baseline')
    parser.add_argument('--ann-file', required=True, help='COCO ground-truth annotation json')
    parser.add_argument('--names', nargs='+', help='column names, one per RUN (default: file names)')
    parser.add_argument('--per-class', action='store_true', help='add per-class tables')
    parser.add_argument('--show-summary', action='store_true',
                        help="also print pycocotools' 12-number summary of every run")
    parser.add_argument('--json', dest='json_out', metavar='FILE', help='also write the numbers as json')
    return parser.parse_args(argv)


def _run_json(run) -> dict:
    """The --json entry of one run; segm keys only for a run with masks (bbox-only json unchanged)."""
    out = {'name': run.name, 'source': run.source, 'num_detections': run.num_detections,
           'metrics': run.metrics, 'per_class': run.per_class}
    if run.segm_metrics:
        out.update(segm_metrics=run.segm_metrics, segm_per_class=run.segm_per_class)
    if run.segm_note:
        out['segm_note'] = run.segm_note
    return out


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    from lip_det.checkpoints.safe_load import CheckpointError
    from lip_det.evaluation.small_objects import compare_runs, format_table

    try:
        runs, sizes = compare_runs(args.ann_file, args.runs, names=args.names, per_class=args.per_class)
    except (OSError, ValueError, CheckpointError) as exc:
        # a user's file that is missing, unreadable or malformed (DetectionInputError is a
        # ValueError): one line that names the file and the bad entry, no traceback
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f"ground truth: {args.ann_file} ({sizes['small']} small, {sizes['medium']} medium, "
          f"{sizes['large']} large objects; {sizes['tiny']} of the small are tiny, area <= 16²)")
    for run in runs:
        print(f'{run.name}: {run.source} ({run.num_detections} detections'
              f"{', with masks' if run.segm_metrics else ''})")
        if run.segm_note:
            print(f'note: {run.name}: {run.segm_note}')
        if args.show_summary:
            print(run.summary)
            if run.segm_summary:
                print('segm:')
                print(run.segm_summary)
    print()
    print(format_table(runs, per_class=args.per_class))
    if args.json_out:
        payload = {'ann_file': args.ann_file, 'gt_sizes': sizes,
                   'runs': [_run_json(r) for r in runs]}
        try:
            with open(args.json_out, 'w') as f:
                json.dump(payload, f, indent=2)
        except OSError as exc:
            print(f'error: --json: {exc}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

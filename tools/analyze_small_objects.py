#!/usr/bin/env python
"""Compare detectors on COCO AP, AP50, AP75, AP_S, AP_M, AP_L, AP_tiny with deltas against the first.

    python tools/analyze_small_objects.py --ann-file GT.json RUN [RUN ...] [--names ...] [--per-class]

A RUN is a COCO result json (e.g. ``<prefix>.bbox.json`` from CocoMetric's ``outfile_prefix``),
the pickle of ``tools/test.py CONFIG CKPT --out results.pkl``, or a work dir holding either.
Every run is scored with pycocotools against the same GT file.
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
        print(f'{run.name}: {run.source} ({run.num_detections} detections)')
        if args.show_summary:
            print(run.summary)
    print()
    print(format_table(runs, per_class=args.per_class))
    if args.json_out:
        payload = {'ann_file': args.ann_file, 'gt_sizes': sizes,
                   'runs': [{'name': r.name, 'source': r.source, 'num_detections': r.num_detections,
                             'metrics': r.metrics, 'per_class': r.per_class} for r in runs]}
        try:
            with open(args.json_out, 'w') as f:
                json.dump(payload, f, indent=2)
        except OSError as exc:
            print(f'error: --json: {exc}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

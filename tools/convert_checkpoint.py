#!/usr/bin/env python
"""Convert an ImageNet classification checkpoint into a detector-backbone checkpoint.

    python tools/convert_checkpoint.py SRC DST [--src-format F] [--arch A] [--force] [--no-strict]

An mmpretrain classifier checkpoint (an mmengine Runner checkpoint of ``ImageClassifier``, from
mmpretrain or from tools/train.py with configs/imagenet) is detected by its ``backbone.*`` and
``head.*`` keys: its backbone type and arguments come from the config the Runner stored in it
(read as data, never executed), else from the keys (--backbone-type, --arch to choose).

DST then loads with ``init_cfg=dict(type='Pretrained', checkpoint=DST)``. Exit status: 0 on
success, 1 on an unknown/mismatched/unreadable checkpoint, 2 on bad arguments (including a DST
that is a directory, has no usable parent directory, or reaches SRC through any path or link:
SRC is never written), 3 if DST exists and --force is not given, 4 if writing DST failed (DST
is then as it was, and no temporary file is left, also when the tool is stopped by SIGTERM).
"""
from __future__ import annotations

import argparse
import os
import sys

# Runnable from a checkout without installation.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lip_det.checkpoints.formats import FORMAT_ALIASES, FORMATS  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    formats = '\n'.join(f'  {s.name:<13} {s.description} -> '
                        f'{s.backbone or "the backbone of its config"}'
                        for s in FORMATS.values())
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f'source formats (detected from the keys unless --src-format is given):\n{formats}')
    parser.add_argument('src', help='classification checkpoint (.pth/.pth.tar/.pt)')
    parser.add_argument('dst', nargs='?', help='output backbone checkpoint (omit with --check)')
    parser.add_argument('--src-format', choices=sorted(FORMATS) + sorted(FORMAT_ALIASES),
                        metavar='FORMAT', help='source format, one of those listed below '
                        f'(aliases: {", ".join(sorted(FORMAT_ALIASES))}); default: detect')
    parser.add_argument('--arch', help="architecture, e.g. resnet50 or 50 (default: detect; "
                                       'if given it must agree with the checkpoint)')
    parser.add_argument('--backbone-type',
                        choices=sorted({s.backbone for s in FORMATS.values() if s.backbone}),
                        help='mmpretrain checkpoints only: the backbone type when the checkpoint '
                             'holds no config (e.g. SoftPoolResNet, whose keys are a plain '
                             "ResNet's); if it holds one, this must agree with it")
    parser.add_argument('--force', action='store_true', help='overwrite DST if it exists')
    parser.add_argument('--no-strict', dest='strict', action='store_false',
                        help='write what matches instead of failing on unmapped/missing tensors')
    parser.add_argument('--check', action='store_true', help='analyse and report only; write nothing')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load SRC with weights_only=False (runs pickled code: only for '
                             'files whose origin you trust, when the safe loader refuses them)')
    args = parser.parse_args(argv)
    if args.dst is None and not args.check:
        parser.error('DST is required unless --check is given')
    return args


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    from lip_det.checkpoints import CheckpointError, OutputWriteError, convert_checkpoint

    try:
        result = convert_checkpoint(args.src, None if args.check else args.dst,
                                    src_format=args.src_format, arch=args.arch,
                                    strict=args.strict, force=args.force, trusted=args.trust_pickle,
                                    backbone_type=args.backbone_type)
    except FileExistsError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 3
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    except ValueError as exc:  # bad arguments, an unusable DST among them
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except OutputWriteError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 4
    print(f'source       : {args.src}')
    print(result.summary())
    if args.check:
        print('check only   : nothing written')
    else:
        print(f'written      : {args.dst}')
        print(f"use with     : init_cfg=dict(type='Pretrained', checkpoint='{args.dst}')")
    if not result.ok:
        print('warning: written with --no-strict; the tensors listed above were not converted',
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())

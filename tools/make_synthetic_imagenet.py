#!/usr/bin/env python
"""Generate the deterministic synthetic classification set (ImageNet folder layout) used to
pretrain backbones on the CPU (configs/synthetic/*_cls_synthetic.py)."""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from lip_det.datasets.generator_cli import (EXIT_STATUS_HELP, FORCE_HELP,  # noqa: E402
                                            OneLineErrorParser, run_main, validated_config,
                                            write_set)
from lip_det.datasets.synthetic_coco import CLASSES  # noqa: E402
from lip_det.datasets.synthetic_imagenet import (IMAGENET_META_NAME, MAX_CLUTTER,  # noqa: E402
                                                 MAX_PER_CLASS, MAX_SIZE, MIN_SIZE,
                                                 SyntheticImageNetConfig,
                                                 generate_synthetic_imagenet)

PROG = 'make_synthetic_imagenet'

EPILOG = f'''\
Layout: OUT/train/<class>/NNNNNN.png, OUT/val/<class>/NNNNNN.png, OUT/{IMAGENET_META_NAME}.
--out: a new or empty directory gets a fresh set; a set this tool generated with the same
parameters is verified (size and SHA-256 of every file) and reused, or regenerated when
damaged; one with other parameters is replaced only with --force; a directory holding anything
else is refused, --force or not: only the tool's own files are ever deleted.
{EXIT_STATUS_HELP}'''


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    d = SyntheticImageNetConfig()
    p = OneLineErrorParser(prog=PROG, description=__doc__, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='data/synthetic_imagenet', help='output directory')
    p.add_argument('--num-train-per-class', type=int, default=d.num_train_per_class,
                   help=f'training images per class, 1..{MAX_PER_CLASS} (default '
                        f'{d.num_train_per_class})')
    p.add_argument('--num-val-per-class', type=int, default=d.num_val_per_class,
                   help=f'validation images per class, 1..{MAX_PER_CLASS} (default '
                        f'{d.num_val_per_class})')
    p.add_argument('--size', type=int, default=d.size,
                   help=f'square image side in pixels, {MIN_SIZE}..{MAX_SIZE} (default {d.size})')
    p.add_argument('--seed', type=int, default=d.seed, help='any 64-bit signed integer')
    p.add_argument('--clutter', type=int, default=d.clutter,
                   help=f'distractor strokes per image, 0..{MAX_CLUTTER} (default {d.clutter})')
    p.add_argument('--force', action='store_true', help=FORCE_HELP)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Generate the set and print its summary; return the exit status."""
    return run_main(PROG, lambda: _generate(parse_args(argv)))


def _generate(args: argparse.Namespace) -> int:
    cfg = validated_config(lambda: SyntheticImageNetConfig(
        num_train_per_class=args.num_train_per_class, num_val_per_class=args.num_val_per_class,
        size=args.size, seed=args.seed, clutter=args.clutter), args)
    t0 = time.time()
    summary = write_set(args.out, lambda: generate_synthetic_imagenet(args.out, cfg,
                                                                      force=args.force))
    print(f'synthetic classification set in {osp.abspath(args.out)} ({summary["action"]}, '
          f'{time.time() - t0:.1f} s; seed {cfg.seed}, {cfg.size}x{cfg.size}, classes '
          f'(folder order): {", ".join(sorted(CLASSES))})')
    for split, counts in summary['images'].items():
        print(f'  {split:5s}: {sum(counts.values()):6d} images, {len(counts)} classes')
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python
"""Generate the deterministic synthetic COCO-format detection set used by configs/synthetic."""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from lip_det.datasets.generator_cli import (EXIT_STATUS_HELP, FORCE_HELP,  # noqa: E402
                                            OneLineErrorParser, run_main, validated_config,
                                            write_set)
from lip_det.datasets.synthetic_coco import (  # noqa: E402
    CLASSES, MAX_CLUTTER, MAX_IMAGES, MAX_OBJECTS, MAX_SIDE, META_NAME, MIN_SIDE,
    SyntheticCocoConfig, generate_synthetic_coco, parse_size_fractions)

PROG = 'make_synthetic_coco'

EPILOG = f'''\
--out: a new or empty directory gets a fresh set. A directory holding a set this tool
generated with the same parameters is verified (every file's size and SHA-256 against
{META_NAME}; for sets written before digests were recorded: every file present, PNGs
complete, annotation JSONs matching the meta) and reused, or regenerated in place when
damaged. A set with other parameters is replaced only with --force. A directory holding
anything else (a file or link the set does not hold, or an unreadable {META_NAME}) is
refused, --force or not: only the tool's own files are ever deleted.
{EXIT_STATUS_HELP}'''


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    d = SyntheticCocoConfig()
    p = OneLineErrorParser(prog=PROG, description=__doc__, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='data/synthetic',
                   help='output directory (train/, val/, annotations/); see below')
    p.add_argument('--num-train', type=int, default=d.num_train,
                   help=f'training images, 0..{MAX_IMAGES} (default {d.num_train})')
    p.add_argument('--num-val', type=int, default=d.num_val,
                   help=f'validation images, 0..{MAX_IMAGES}, not both 0 '
                        f'(default {d.num_val})')
    p.add_argument('--width', type=int, default=d.width,
                   help=f'image width in pixels, {MIN_SIDE}..{MAX_SIDE} (default {d.width}); '
                        'large objects need >= 158')
    p.add_argument('--height', type=int, default=d.height,
                   help=f'image height in pixels, {MIN_SIDE}..{MAX_SIDE} (default {d.height})')
    p.add_argument('--seed', type=int, default=d.seed, help='any 64-bit signed integer')
    p.add_argument('--min-objects', type=int, default=d.min_objects,
                   help=f'objects per image, 1..{MAX_OBJECTS} (default {d.min_objects})')
    p.add_argument('--max-objects', type=int, default=d.max_objects,
                   help=f'objects per image, min-objects..{MAX_OBJECTS} '
                        f'(default {d.max_objects})')
    p.add_argument('--size-fractions', default=','.join(map(str, d.size_fractions)),
                   help='fractions of small,medium,large objects (COCO area ranges): three '
                        'finite numbers >= 0 with a positive sum')
    p.add_argument('--clutter', type=int, default=d.clutter,
                   help=f'distractor strokes per image, 0..{MAX_CLUTTER} '
                        f'(default {d.clutter})')
    p.add_argument('--masks', action='store_true',
                   help='also write each object\'s instance mask (the exact drawn pixels) as '
                        'COCO RLE in "segmentation", for Mask R-CNN; images, boxes and "area" '
                        '(the box w*h) are those of the set without masks')
    p.add_argument('--force', action='store_true', help=FORCE_HELP)
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Generate the set and print its summary; return the exit status."""
    return run_main(PROG, lambda: _generate(parse_args(argv)))


def _generate(args: argparse.Namespace) -> int:
    cfg = validated_config(lambda: SyntheticCocoConfig(
        num_train=args.num_train, num_val=args.num_val, width=args.width, height=args.height,
        seed=args.seed, min_objects=args.min_objects, max_objects=args.max_objects,
        size_fractions=parse_size_fractions(args.size_fractions), clutter=args.clutter,
        masks=args.masks), args)
    last = [0.0]

    def progress(split, done, total):
        now = time.time()
        if not args.quiet and (done == total or now - last[0] > 1.0):
            last[0] = now
            # Overwrite one line on a terminal, one line per update in a log file.
            tty = sys.stdout.isatty()
            print(f'\r  {split}: {done}/{total} images' if tty else f'  {split}: {done}/{total} images',
                  end='\n' if done == total or not tty else '', flush=True)

    t0 = time.time()
    summary = write_set(args.out, lambda: generate_synthetic_coco(
        args.out, cfg, force=args.force, progress=progress))
    took = time.time() - t0
    print(f'synthetic COCO set in {osp.abspath(args.out)} ({summary["action"]}, {took:.1f} s; '
          f'seed {cfg.seed}, {cfg.width}x{cfg.height}, classes: {", ".join(CLASSES)}'
          f'{"; instance masks" if cfg.masks else ""})')
    if summary['action'] == 'repaired':
        print(f'  regenerated a damaged set: {summary["damage"]}')
    for split, s in summary['splits'].items():
        sizes = s['sizes']
        print(f'  {split:5s}: {s["images"]:5d} images {s["annotations"]:6d} objects  '
              f'small {sizes["small"]} / medium {sizes["medium"]} / large {sizes["large"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

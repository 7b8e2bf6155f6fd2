#!/usr/bin/env python
"""Generate the deterministic synthetic COCO-format detection set used by configs/synthetic."""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from lip_det.datasets.synthetic_coco import (CLASSES, SyntheticCocoConfig,  # noqa: E402
                                             generate_synthetic_coco, parse_size_fractions)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    d = SyntheticCocoConfig()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--out', default='data/synthetic',
                   help='output directory (train/, val/, annotations/)')
    p.add_argument('--num-train', type=int, default=d.num_train)
    p.add_argument('--num-val', type=int, default=d.num_val)
    p.add_argument('--width', type=int, default=d.width)
    p.add_argument('--height', type=int, default=d.height)
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--min-objects', type=int, default=d.min_objects)
    p.add_argument('--max-objects', type=int, default=d.max_objects)
    p.add_argument('--size-fractions', default=','.join(map(str, d.size_fractions)),
                   help='fractions of small,medium,large objects (COCO area ranges)')
    p.add_argument('--clutter', type=int, default=d.clutter,
                   help='number of distractor strokes per image')
    p.add_argument('--force', action='store_true',
                   help='replace OUT if it holds anything but a set with these parameters')
    p.add_argument('--quiet', action='store_true')
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Generate the set and print its summary."""
    args = parse_args(argv)
    try:
        cfg = SyntheticCocoConfig(
            num_train=args.num_train, num_val=args.num_val, width=args.width,
            height=args.height, seed=args.seed, min_objects=args.min_objects,
            max_objects=args.max_objects,
            size_fractions=parse_size_fractions(args.size_fractions), clutter=args.clutter)
        cfg.validate()
    except ValueError as e:
        print(f'make_synthetic_coco: error: {e}', file=sys.stderr)
        return 2
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
    try:
        summary = generate_synthetic_coco(args.out, cfg, force=args.force, progress=progress)
    except FileExistsError as e:
        print(f'make_synthetic_coco: error: {e}', file=sys.stderr)
        return 1
    took = time.time() - t0
    print(f'synthetic COCO set in {osp.abspath(args.out)} ({took:.1f} s; seed {cfg.seed}, '
          f'{cfg.width}x{cfg.height}, classes: {", ".join(CLASSES)})')
    for split, s in summary['splits'].items():
        sizes = s['sizes']
        print(f'  {split:5s}: {s["images"]:5d} images {s["annotations"]:6d} objects  '
              f'small {sizes["small"]} / medium {sizes["medium"]} / large {sizes["large"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

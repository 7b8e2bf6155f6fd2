#!/usr/bin/env python
"""Can the RPN propose the small objects at all? Best anchor IoU of every ground-truth box, per size.

    python tools/anchor_coverage.py CONFIG --ann-file GT.json [--json PATH]

Builds the config's RPN anchor generator for the images of GT.json (at their annotated size; the
synthetic configs do not resize) and reports, per size range (tiny <= 16², small < 32², medium,
large), the share of objects whose best anchor IoU is below the RPN assigner's ``min_pos_iou``
(such an object never gets a positive anchor, even with low-quality matching) and below its
``pos_iou_thr``, and the median best IoU. Whatever the backbone, objects without a positive anchor
are only found through other anchors' regression, so this bounds what any backbone can gain there.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('config', help='detector config with an RPN (model.rpn_head.anchor_generator)')
    p.add_argument('--ann-file', required=True, help='COCO annotations to check')
    p.add_argument('--json', help='also write the numbers to this JSON file')
    return p.parse_args(argv)


def anchor_coverage(config: str, ann_file: str) -> Dict[str, object]:
    """Per size range: objects, share below min_pos_iou / pos_iou_thr, median best anchor IoU."""
    import torch
    from mmdet.registry import TASK_UTILS
    from mmdet.structures.bbox import bbox_overlaps
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from lip_det.evaluation import load_ground_truth
    register_all_modules()
    cfg = Config.fromfile(config)
    rpn = cfg.model.get('rpn_head')
    if rpn is None or 'anchor_generator' not in rpn:
        raise ValueError(f'{config}: model.rpn_head.anchor_generator is needed (an RPN detector)')
    assigner = cfg.model.train_cfg.rpn.assigner
    gen = TASK_UTILS.build(rpn.anchor_generator)
    gt = load_ground_truth(ann_file)
    best, areas = [], []
    for img in gt.dataset['images']:
        anns = [a for a in gt.imgToAnns[img['id']] if not a.get('iscrowd', 0)]
        if not anns:
            continue
        sizes = [((img['height'] + s[1] - 1) // s[1], (img['width'] + s[0] - 1) // s[0])
                 for s in gen.strides]
        anchors = torch.cat(gen.grid_priors(sizes, device='cpu'))
        boxes = torch.tensor([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                               a['bbox'][1] + a['bbox'][3]] for a in anns], dtype=torch.float32)
        best.append(bbox_overlaps(boxes, anchors).max(1).values)
        areas += [a['area'] for a in anns]
    if not best:
        raise ValueError(f'{ann_file}: no non-crowd objects')
    best_t, area = torch.cat(best), torch.tensor(areas, dtype=torch.float32)
    ranges = {'tiny': area <= 16 ** 2, 'small': area < 32 ** 2,
              'medium': (area >= 32 ** 2) & (area < 96 ** 2), 'large': area >= 96 ** 2}
    out: Dict[str, object] = {'min_pos_iou': float(assigner.min_pos_iou),
                              'pos_iou_thr': float(assigner.pos_iou_thr), 'ranges': {}}
    for name, m in ranges.items():
        b = best_t[m]
        out['ranges'][name] = {
            'objects': int(m.sum()),
            'below_min_pos_iou': float((b < assigner.min_pos_iou).float().mean()) if b.numel() else None,
            'below_pos_iou_thr': float((b < assigner.pos_iou_thr).float().mean()) if b.numel() else None,
            'median_best_iou': float(b.median()) if b.numel() else None}
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        out = anchor_coverage(args.config, args.ann_file)
    except (OSError, ValueError, KeyError) as exc:
        print(f'anchor_coverage: error: {exc}', file=sys.stderr)
        return 1
    print(f'{"range":8s} {"objects":>7s}  best IoU < {out["min_pos_iou"]:g} (no positive anchor)  '
          f'< {out["pos_iou_thr"]:g}  median best IoU')
    for name, r in out['ranges'].items():
        if r['objects']:
            print(f'{name:8s} {r["objects"]:7d}  {100 * r["below_min_pos_iou"]:30.1f} %  '
                  f'{100 * r["below_pos_iou_thr"]:5.1f} %  {r["median_best_iou"]:15.2f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(out, config=args.config, ann_file=args.ann_file), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

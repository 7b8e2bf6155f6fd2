#!/usr/bin/env python
"""Has a trained LIP backbone learned anything but average pooling? Statistics of its importance maps.

    python tools/importance_stats.py CHECKPOINT [CHECKPOINT ...] --config CFG --ann-file GT.json
        --img-dir DIR [--num-images 100] [--json PATH] [--trust-pickle]

With several checkpoints (e.g. one per training seed) each is measured, and the table shows the
mean ± std over them.

For every LIP layer, over the first N images of a COCO set (e.g. the val split):
- the logit's mean and spread (its gate bounds it to (0, coeff); a zero-initialised LIP starts at
  coeff/2 everywhere, which is average pooling);
- ``uniformity``: per pooling window, the effective number of pixels ``1 / Σ w²`` of the weights
  ``w = e^l / Σ e^l`` divided by the window's valid pixels, averaged over windows and channels:
  1.0 is average pooling, 1/k² is max-like pooling (one pixel takes all the weight);
- ``max_weight``: the mean largest weight of a window (1/9 for average pooling of a 3x3 window);
- ``small_contrast``: mean e^l over the pixels of small ground-truth boxes (area < 32²) divided by
  the mean e^l of the whole map: above 1, the layer gives small objects more weight than their
  surroundings, which is what LIP is claimed to learn.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))
sys.path.insert(1, TOOLS)  # shares visualize_importance's checkpoint and image loading

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('checkpoints', nargs='+', metavar='CHECKPOINT',
                   help='detector checkpoint(s) (tools/train.py output) of the same config')
    p.add_argument('--config', required=True, help='the config the checkpoint was trained with')
    p.add_argument('--ann-file', required=True, help='COCO annotations of the images')
    p.add_argument('--img-dir', required=True, help='directory of the images')
    p.add_argument('--num-images', type=int, default=100, help='images to average over')
    p.add_argument('--json', help='also write the statistics to this JSON file')
    p.add_argument('--trust-pickle', action='store_true',
                   help='load the checkpoint with weights_only=False (trusted files only)')
    args = p.parse_args(argv)
    if args.num_images < 1:
        p.error(f'--num-images must be >= 1, got {args.num_images}')
    return args


def window_weight_stats(logit: torch.Tensor, kernel_size: int, stride: int, padding: int
                        ) -> Dict[str, float]:
    """Uniformity and mean max weight of the pooling windows of ``logit`` [N, C, H, W]."""
    n, c, h, w = logit.shape
    k = kernel_size
    # Window-max subtraction keeps e^l finite; padded pixels get weight 0, as in the op.
    x = logit.reshape(n * c, 1, h, w).double()
    valid = F.unfold(torch.ones_like(x), k, padding=padding, stride=stride)  # [NC, k², L]
    vals = F.unfold(x, k, padding=padding, stride=stride)
    vals = vals.masked_fill(valid == 0, float('-inf'))
    wts = torch.softmax(vals, dim=1)
    eff = 1.0 / (wts ** 2).sum(1)  # effective pixels per window
    uniformity = (eff / valid.sum(1)).mean().item()
    return {'uniformity': uniformity, 'max_weight': wts.amax(1).mean().item()}


def small_box_mask(anns: List[dict], img_hw: Sequence[int], map_hw: Sequence[int]
                   ) -> torch.Tensor:
    """Boolean [h, w] mask of the map cells covered by small GT boxes (area < 32²)."""
    mask = torch.zeros(map_hw, dtype=torch.bool)
    sy, sx = map_hw[0] / img_hw[0], map_hw[1] / img_hw[1]
    for a in anns:
        if a.get('iscrowd', 0) or a['area'] >= 32 ** 2:
            continue
        x, y, bw, bh = a['bbox']
        x0, y0 = int(x * sx), int(y * sy)
        x1 = max(x0 + 1, int(round((x + bw) * sx)))
        y1 = max(y0 + 1, int(round((y + bh) * sy)))
        mask[y0:y1, x0:x1] = True
    return mask


def collect(backbone: torch.nn.Module, images: List[torch.Tensor], anns: List[List[dict]]
            ) -> Dict[str, Dict[str, float]]:
    """Per LIP layer, the statistics of the module docstring averaged over the images."""
    from lip_det.layers.lip_logits import LIPLayer
    sums: Dict[str, Dict[str, float]] = {}
    current: Dict[str, object] = {}

    def hook(name):
        def capture(module, args, output):
            logit = module.compute_logit(args[0], args[1] if len(args) > 1 else None)
            ks, st, pd = (v if isinstance(v, int) else v[0]
                          for v in (module.kernel_size, module.stride or module.kernel_size,
                                    module.padding))
            stats = window_weight_stats(logit, ks, st, pd)
            e = logit.exp()[0].mean(0)  # [h, w], channel mean of e^l
            mask = small_box_mask(current['anns'], current['hw'], e.shape)
            contrast = (e[mask].mean() / e.mean()).item() if mask.any() else float('nan')
            stats.update(logit_mean=logit.mean().item(), logit_std=logit.std().item(),
                         small_contrast=contrast)
            acc = sums.setdefault(name, {'images': 0, 'contrast_images': 0})
            acc['images'] += 1
            for key, v in stats.items():
                if key == 'small_contrast':
                    if v == v:  # not NaN: the image has small objects
                        acc['contrast_images'] += 1
                        acc[key] = acc.get(key, 0.0) + v
                else:
                    acc[key] = acc.get(key, 0.0) + v
        return capture

    handles = [m.register_forward_hook(hook(n)) for n, m in backbone.named_modules()
               if isinstance(m, LIPLayer)]
    if not handles:
        raise ValueError(f'{type(backbone).__name__} has no LIP layers')
    try:
        with torch.no_grad():
            for img, a in zip(images, anns):
                current.update(anns=a, hw=img.shape[-2:])
                backbone(img)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name, acc in sums.items():
        n, nc = acc.pop('images'), acc.pop('contrast_images')
        out[name] = {k: v / (nc if k == 'small_contrast' else n) for k, v in acc.items()}
        if 'small_contrast' not in out[name]:
            out[name]['small_contrast'] = float('nan')
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    from lip_det.checkpoints import CheckpointError
    from pycocotools.coco import COCO

    from visualize_importance import build_backbone, load_image, to_tensor
    from lip_det.evaluation.seed_stats import spread
    per_ckpt = []
    try:
        gt = COCO(args.ann_file)
        ids = sorted(gt.getImgIds())[:args.num_images]
        anns = [gt.loadAnns(gt.getAnnIds(imgIds=[i])) for i in ids]
        for ckpt in args.checkpoints:
            backbone, mean, std, bgr_to_rgb = build_backbone(ckpt, args.config, args.trust_pickle)
            images = [to_tensor(load_image(os.path.join(args.img_dir, gt.loadImgs(i)[0]['file_name']),
                                           None), mean, std, bgr_to_rgb) for i in ids]
            per_ckpt.append(collect(backbone, images, anns))
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    keys = ('logit_mean', 'logit_std', 'uniformity', 'max_weight', 'small_contrast')
    summary = {layer: {k: spread([s[layer][k] for s in per_ckpt]).as_dict() for k in keys}
               for layer in per_ckpt[0]}
    n = len(per_ckpt)
    print(f'{len(ids)} images, {n} checkpoint(s){", mean ± std over them" if n > 1 else ""}; '
          'uniformity 1 = average pooling, 1/k² = max-like; small_contrast > 1: small objects '
          'weighted up')
    print(f'{"layer":16s} ' + ' '.join(f'{k:>15s}' for k in keys))
    for layer, s in summary.items():
        print(f'{layer:16s} ' + ' '.join(
            f'{s[k]["mean"]:7.3f} ± {s[k]["std"]:5.3f}' if n > 1 else f'{s[k]["mean"]:15.3f}'
            for k in keys))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'checkpoints': args.checkpoints, 'config': args.config,
                       'num_images': len(ids), 'layers': summary, 'per_checkpoint': per_ckpt},
                      f, indent=1)
    return 0

if __name__ == '__main__':
    sys.exit(main())

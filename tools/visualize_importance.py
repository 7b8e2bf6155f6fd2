#!/usr/bin/env python
"""Show what each LIP layer attends to: the learned importance map e^l next to the input image.

    python tools/visualize_importance.py IMAGE CHECKPOINT [--config CFG] [--out-dir DIR]

CHECKPOINT may be a detector checkpoint (``tools/train.py`` output, keys ``backbone.*``), a
backbone checkpoint written by ``tools/convert_checkpoint.py``, or a reference LIP classification
checkpoint (converted in memory). The backbone comes from ``--config`` (``model.backbone``) or,
without one, from the checkpoint itself. One PNG per LIP layer is written, named after the layer
(e.g. ``00_maxpool.png``, ``01_layer2.0.conv2.0.png``), showing the input and the channel-mean
(or max) of ``e^l`` upsampled to the image, as in the LIP paper's figures.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

# mmdet's default normalisation (ImageNet statistics, RGB order) when no config says otherwise.
DEFAULT_MEAN = (123.675, 116.28, 103.53)
DEFAULT_STD = (58.395, 57.12, 57.375)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('image', help='input image (any format OpenCV reads)')
    parser.add_argument('checkpoint', help='detector, converted-backbone or LIP reference checkpoint')
    parser.add_argument('--config', help='mmdet config whose model.backbone (and data_preprocessor '
                                         'mean/std) to use; default: inferred from the checkpoint')
    parser.add_argument('--out-dir', default='importance_maps', help='where the PNGs go')
    parser.add_argument('--short-side', type=int, default=None,
                        help='resize the image so its short side is this long (default: as is)')
    parser.add_argument('--reduce', choices=('mean', 'max'), default='mean',
                        help='how e^l is reduced over channels (default: mean)')
    parser.add_argument('--save-npy', action='store_true',
                        help='also save each reduced e^l map (at the layer resolution) as .npy')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load the checkpoint with weights_only=False (trusted files only)')
    return parser.parse_args(argv)


def _backbone_state(ckpt: Any) -> Tuple[Dict[str, torch.Tensor], Optional[Dict[str, Any]]]:
    """(backbone state_dict, backbone config or None) from any supported checkpoint."""
    from lip_det.checkpoints import convert_state_dict, extract_state_dict
    state, wrapper = extract_state_dict(ckpt)
    meta = wrapper.get('meta') if isinstance(wrapper.get('meta'), dict) else {}
    if any(k.startswith('backbone.') for k in state):  # a whole detector
        return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}, None
    if isinstance(meta.get('backbone'), dict):  # written by tools/convert_checkpoint.py
        return state, dict(meta['backbone'])
    result = convert_state_dict(state, wrapper, strict=True)  # a reference classification model
    return result.state_dict, dict(result.backbone)


def build_backbone(checkpoint: str, config: Optional[str] = None, trusted: bool = False
                   ) -> Tuple[torch.nn.Module, Tuple[float, ...], Tuple[float, ...], bool]:
    """(backbone in eval mode with the checkpoint's weights, mean, std, bgr_to_rgb)."""
    import lip_det  # noqa: F401 - registers the backbones and the checkpoint allow-list
    from lip_det.checkpoints import CheckpointError, load_checkpoint_file
    from mmdet.utils import register_all_modules

    from lip_det.registry import build_mmdet_model
    register_all_modules(init_default_scope=False)

    state, cfg = _backbone_state(load_checkpoint_file(checkpoint, trusted=trusted))
    mean, std, bgr_to_rgb = DEFAULT_MEAN, DEFAULT_STD, True
    if config is not None:
        from mmengine.config import Config
        model_cfg = Config.fromfile(config).model
        cfg = dict(model_cfg.backbone)
        pre = model_cfg.get('data_preprocessor') or {}
        mean = tuple(pre.get('mean', mean))
        std = tuple(pre.get('std', std))
        bgr_to_rgb = bool(pre.get('bgr_to_rgb', bgr_to_rgb))
    if cfg is None:
        raise CheckpointError('the checkpoint does not say which backbone it holds (a detector '
                              'checkpoint): pass --config with the config it was trained with')
    cfg.pop('init_cfg', None)  # the weights come from the checkpoint, not from a pretrained file
    backbone = build_mmdet_model(cfg)
    try:
        missing, unexpected = backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when strict=False
        raise CheckpointError(f"checkpoint does not fit {cfg['type']}: {str(exc).splitlines()[1:3]}"
                              ) from None
    if missing or unexpected:
        raise CheckpointError(f"checkpoint does not match {cfg['type']}: missing {missing[:4]}, "
                              f'unexpected {unexpected[:4]}')
    backbone.eval()  # not chained: mmdet's ResNet.train() returns None
    return backbone, mean, std, bgr_to_rgb


def importance_maps(backbone: torch.nn.Module, image: torch.Tensor, reduce: str = 'mean'
                    ) -> List[Tuple[str, torch.Tensor]]:
    """[(layer name, e^l reduced over channels as [H, W])] for every LIP layer, in forward order."""
    from lip_det.layers.lip_logits import LIPLayer
    if reduce not in ('mean', 'max'):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    maps: List[Tuple[str, torch.Tensor]] = []

    def hook(name):
        def capture(module, args, output):
            x = args[0]
            shared = args[1] if len(args) > 1 else None
            # The logit is recomputed from the layer's own inputs: deterministic (conv/IN/gate).
            importance = module.compute_logit(x, shared).exp()[0]
            maps.append((name, importance.mean(0) if reduce == 'mean' else importance.amax(0)))
        return capture

    handles = [m.register_forward_hook(hook(n)) for n, m in backbone.named_modules()
               if isinstance(m, LIPLayer)]
    if not handles:
        raise ValueError(f'{type(backbone).__name__} has no LIP layers to visualise')
    try:
        with torch.no_grad():
            backbone(image)
    finally:
        for h in handles:
            h.remove()
    return maps


def load_image(path: str, short_side: Optional[int]) -> np.ndarray:
    """BGR uint8 image, optionally resized to the given short side."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path!r}')
    if short_side:
        h, w = img.shape[:2]
        scale = short_side / min(h, w)
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_LINEAR)
    return img


def to_tensor(img_bgr: np.ndarray, mean, std, bgr_to_rgb: bool) -> torch.Tensor:
    """[1, 3, H, W] float tensor normalised like mmdet's DetDataPreprocessor."""
    img = img_bgr[..., ::-1] if bgr_to_rgb else img_bgr
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
    t = (t - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return t.unsqueeze(0)


def save_figure(path: str, img_bgr: np.ndarray, name: str, imp: np.ndarray, reduce: str) -> None:
    """Input on the left, e^l (upsampled, with a colour bar in e^l units) on the right."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    h, w = img_bgr.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(8, 4 * h / w + 0.6), constrained_layout=True)
    axes[0].imshow(img_bgr[..., ::-1])
    axes[0].set_title('input')
    # extent stretches the low-resolution map over the image without resampling its values
    shown = axes[1].imshow(imp, cmap='inferno', extent=(0, w, h, 0), interpolation='nearest')
    axes[1].set_title(f'{name}: {reduce}_c e^l ({imp.shape[0]}x{imp.shape[1]})')
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    from lip_det.checkpoints import CheckpointError
    try:
        backbone, mean, std, bgr_to_rgb = build_backbone(args.checkpoint, args.config,
                                                         args.trust_pickle)
        img = load_image(args.image, args.short_side)
        maps = importance_maps(backbone, to_tensor(img, mean, std, bgr_to_rgb), args.reduce)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    for i, (name, imp) in enumerate(maps):
        stem = f'{i:02d}_{re.sub(r"[^A-Za-z0-9_.-]", "_", name)}'
        arr = imp.float().numpy()
        save_figure(os.path.join(args.out_dir, stem + '.png'), img, name, arr, args.reduce)
        if args.save_npy:
            np.save(os.path.join(args.out_dir, stem + '.npy'), arr)
        print(f'{stem}.png  {name:<28} {arr.shape[0]}x{arr.shape[1]}  '
              f'e^l in [{arr.min():.4g}, {arr.max():.4g}]')
    print(f'{len(maps)} LIP layer(s) written to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

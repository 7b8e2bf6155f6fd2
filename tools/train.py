#!/usr/bin/env python
"""Train a detector with MMDetection 3.x, with the lip-det plugin loaded (mmdet's tools/train.py form)."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402
import lip_det  # noqa: E402,F401  (registers layers/backbones and the checkpoint loader)
from lip_det.engine import (CfgOptionsAction, ConfigError, check_load_from,  # noqa: E402
                            check_model_config, load_config, prepare_launch, report_user_errors)
from mmdet.utils import setup_cache_size_limit_of_dynamo  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments (the same as mmdet's tools/train.py)."""
    parser = argparse.ArgumentParser(prog=osp.basename(__file__), description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr linearly with the total batch size '
                        '(auto_scale_lr.base_batch_size in the config)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint; without a path, from the latest '
                        'checkpoint in the work directory')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, key=value (e.g. '
                        'model.backbone.init_cfg.checkpoint=PATH)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torchrun/torch.distributed.launch pass --local-rank (newer) or --local_rank (older).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides in mmdet's order."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.amp:
        if not torch.cuda.is_available():
            # mmengine's AmpOptimWrapper asserts a GPU; say so before building anything.
            raise SystemExit('train.py: error: --amp needs a CUDA device (mmengine\'s '
                             'AmpOptimWrapper does not train on the CPU)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise ConfigError('--auto-scale-lr needs auto_scale_lr = dict(enable=..., '
                              'base_batch_size=...) in the config')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return prepare_launch(cfg, args.launcher)


def main(argv=None) -> None:
    """Check the config and checkpoint, build the runner and train (user errors: one line)."""
    args = parse_args(argv)
    setup_cache_size_limit_of_dynamo()
    with report_user_errors('train.py'):
        cfg = build_config(args)
        check_model_config(cfg)
        check_load_from(cfg, '--resume checkpoint' if args.resume not in (None, 'auto')
                        else 'load_from checkpoint')
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""Where a detector's CPU training step spends its time, and which run-time settings make it cheaper.

    python tools/benchmark_train_step.py CONFIG [--steps 12] [--warmup 2]
        [--variants default channels_last flush_denormal] [--profile 3] [--json PATH]

A/B (same process): every variant gets its own copy of the same initialised model and optimizer,
and in each step all variants train on the same batch one after the other (the order rotating),
so a slow moment of the machine hits them alike. Reported: each variant's median step time and
the median of its per-step ratios to ``default``. Variants change how the step runs, never what
the model is: ``channels_last`` (NHWC memory format of the model), ``flush_denormal`` (denormal
floats flushed to zero), ``threads1`` (one intra-op thread).

Profile (``--profile N``): a torch profile of N training steps of the default variant, self CPU
time grouped into convolution, RoIAlign, NMS, lip-det pooling ops, normalisation and the rest.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

VARIANTS = ('default', 'channels_last', 'flush_denormal', 'threads1')
# Self-CPU-time groups of a profile: first matching substring of the lower-cased event name wins.
GROUPS = (('convolution', ('conv',)),
          ('RoIAlign', ('roi_align', 'roialign')),
          ('NMS', ('nms',)),
          ('lip-det pooling', ('lip_det', 'pool2d', 'soft_pool', 'lip_pool')),
          ('normalisation', ('batch_norm', 'instance_norm', 'native_norm', 'group_norm')),
          ('optimizer', ('sgd', '_foreach', 'clip_grad')))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('config', help='detector config (e.g. configs/synthetic/*.py)')
    p.add_argument('--steps', type=int, default=12, help='timed steps per variant')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps per variant first')
    p.add_argument('--variants', nargs='+', default=['default', 'channels_last', 'flush_denormal'],
                   help=f'variants to compare, of {VARIANTS}; "default" is always included')
    p.add_argument('--profile', type=int, default=0, metavar='N',
                   help='also profile N steps of the default variant (0: no profile)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE')
    p.add_argument('--json', help='write the numbers to this JSON file')
    args = p.parse_args(argv)
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        p.error(f'--variants: unknown {bad}; accepted: {", ".join(VARIANTS)}')
    if args.steps < 1 or args.warmup < 0 or args.profile < 0:
        p.error('--steps must be >= 1, --warmup and --profile >= 0')
    if not osp.isfile(args.config):
        p.error(f'config {args.config!r}: no such file')
    if 'default' not in args.variants:
        args.variants.insert(0, 'default')
    return args


def build(config: str, options: Sequence[str]):
    """(model, optim_wrapper factory, batch iterator) for the config's training set-up."""
    from mmdet.utils import register_all_modules
    from mmengine.config import Config, DictAction
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS
    from mmengine.runner import Runner

    import lip_det  # noqa: F401
    register_all_modules()
    cfg = Config.fromfile(config)
    if options:
        ap = argparse.ArgumentParser()
        ap.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(ap.parse_args(['--o', *options]).o)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)

    def batches():
        while True:
            yield from loader

    return model, (lambda m: build_optim_wrapper(m, copy.deepcopy(cfg.optim_wrapper))), batches()


class Variant:
    """One way of running the step: its own model copy and optimizer, and a context."""

    def __init__(self, name: str, model, make_optim: Callable) -> None:
        self.name = name
        self.model = copy.deepcopy(model)
        if name == 'channels_last':
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optim = make_optim(self.model)
        self.times: List[float] = []

    def step(self, batch) -> float:
        """One training step; returns its wall time."""
        threads = torch.get_num_threads()
        denormal = False
        if self.name == 'threads1':
            torch.set_num_threads(1)
        if self.name == 'flush_denormal':
            denormal = torch.set_flush_denormal(True)
        try:
            t0 = time.perf_counter()
            self.model.train_step(batch, self.optim)
            return time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)
            if denormal:
                torch.set_flush_denormal(False)


def ab_test(variants: List[Variant], batches, steps: int, warmup: int) -> Dict[str, dict]:
    """Alternate the variants step by step on the same batches; medians and ratios to default."""
    ratios: Dict[str, List[float]] = {v.name: [] for v in variants}
    for k in range(warmup + steps):
        batch = next(batches)
        order = variants[k % len(variants):] + variants[:k % len(variants)]
        times = {v.name: v.step(copy.deepcopy(batch)) for v in order}
        if k >= warmup:
            for v in variants:
                v.times.append(times[v.name])
                ratios[v.name].append(times[v.name] / times['default'])
        print(f'  step {k + 1}/{warmup + steps}' + ('' if k >= warmup else ' (warm-up)') + ': '
              + '  '.join(f'{n} {t:.3f}s' for n, t in times.items()), flush=True)
    return {v.name: {'median_s': statistics.median(v.times),
                     'ratio_to_default': statistics.median(ratios[v.name]),
                     'times_s': v.times} for v in variants}


def profile(variant: Variant, batches, steps: int) -> Dict[str, float]:
    """Share of self CPU time per group over ``steps`` training steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            variant.step(next(batches))
    totals: Dict[str, float] = {}
    top: Dict[str, float] = {}
    for evt in prof.key_averages():
        name = evt.key.lower()
        group = next((g for g, keys in GROUPS if any(k in name for k in keys)), 'other')
        totals[group] = totals.get(group, 0.0) + evt.self_cpu_time_total
        top[evt.key] = evt.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    shares = {g: totals.get(g, 0.0) / whole for g, _ in GROUPS + (('other', ()),)}
    print('\nself CPU time by group over %d profiled steps:' % steps)
    for g, s in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f'  {g:16s} {100 * s:5.1f} %')
    print('top events:')
    for name, t in sorted(top.items(), key=lambda kv: -kv[1])[:12]:
        print(f'  {100 * t / whole:5.1f} %  {name}')
    return shares


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    model, make_optim, batches = build(args.config, args.cfg_options)
    variants = [Variant(n, model, make_optim) for n in dict.fromkeys(args.variants)]
    print(f'{args.config}: {len(variants)} variants, {args.warmup} warm-up + {args.steps} timed '
          f'steps each, alternating; {torch.get_num_threads()} threads', flush=True)
    result = {'config': args.config, 'threads': torch.get_num_threads(),
              'ab': ab_test(variants, batches, args.steps, args.warmup)}
    print('\nvariant            median step   ratio to default (median of per-step ratios)')
    for name, r in result['ab'].items():
        print(f'  {name:16s} {r["median_s"]:8.3f} s   {r["ratio_to_default"]:.3f}')
    if args.profile:
        result['profile_shares'] = profile(variants[0], batches, args.profile)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

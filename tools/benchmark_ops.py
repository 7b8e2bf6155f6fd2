"""Fused vs plain-PyTorch pooling ops on this CPU: time, peak memory and the bandwidth floor.

For each method (LIP, SoftPool, Max-Ent, Gaussian) and detection-sized shape, measures side by
side in one run: forward time (inference, no autograd), forward+backward time, and the peak
memory allocated above the inputs during forward+backward, of the fused op
(``lip_det.ops.fused``) and the plain-PyTorch op (``lip_det.ops.reference``). Also measures the
memory-bandwidth floor of each shape: copying the op's input tensors into preallocated buffers
(each input byte read once and written once), and states each fused forward as a multiple of it.

    python tools/benchmark_ops.py [--json results.json] [--repeat 5] [--methods lip soft]

Times are medians over ``--repeat`` runs after one warm-up. Peak memory comes from the PyTorch
profiler's memory timeline (tensors allocated through the CPU allocator, which includes every
gradient and temporary; the fused kernels' per-thread row buffers, O(kernel·width) floats, are
plain heap memory and not counted).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lip_det.ops import _ext, reference  # noqa: E402

SHAPES = {'lip_stem': ((2, 64, 400, 672), (3, 3), (2, 2), (1, 1)),
          'stage_transition': ((2, 256, 200, 336), (3, 3), (2, 2), (1, 1))}
METHODS = ('lip', 'soft', 'maxent', 'gauss')
OP_NAMES = {'lip': 'lip_pool2d', 'soft': 'soft_pool2d', 'maxent': 'maxent_pool2d', 'gauss': 'gauss_pool2d'}


def make_inputs(method: str, shape: Sequence[int], seed: int = 0) -> List[torch.Tensor]:
    """x plus the method's second tensor, in the ranges the layers produce."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    n, c = shape[:2]
    if method == 'lip':  # SoftGate output: sigmoid·12
        return [x, torch.randn(shape, generator=gen).sigmoid_().mul_(12.0)]
    if method == 'maxent':  # GFGP: one λ in (0, 1) per sample and channel
        return [x, torch.randn(n, c, 1, 1, generator=gen).sigmoid_()]
    if method == 'gauss':  # η = softplus(...) per sample and channel
        return [x, torch.nn.functional.softplus(torch.randn(n, c, 1, 1, generator=gen))]
    return [x]


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated above the starting point while fn runs (profiler memory timeline)."""
    acts = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=acts, profile_memory=True, record_shapes=True,
                                with_stack=True) as prof:
        fn()
    cur = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        name = getattr(action, 'name', str(action))
        if name == 'CREATE':
            cur += size
        elif name == 'DESTROY':
            cur -= size
        peak = max(peak, cur)
    return peak


def measure(impl, method: str, inputs: List[torch.Tensor], geom: Tuple, repeat: int) -> Dict[str, float]:
    op = getattr(impl, OP_NAMES[method])

    def forward():
        with torch.no_grad():
            return op(*inputs, *geom)

    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    grad = torch.ones_like(forward())

    def forward_backward():
        for t in leaves:
            t.grad = None
        op(*leaves, *geom).backward(grad)

    res = {'fwd_ms': median_ms(forward, repeat), 'fwd_bwd_ms': median_ms(forward_backward, repeat)}
    for t in leaves:
        t.grad = None
    res['fwd_bwd_peak_bytes'] = peak_bytes(forward_backward)
    for t in leaves:
        t.grad = None
    res['fwd_peak_bytes'] = peak_bytes(forward)
    return res


def copy_floor_ms(inputs: List[torch.Tensor], repeat: int) -> float:
    """Read every input byte once and write it once: a plain copy into preallocated buffers."""
    bufs = [torch.empty_like(t) for t in inputs]

    def copy():
        for b, t in zip(bufs, inputs):
            b.copy_(t)

    return median_ms(copy, repeat)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shapes', nargs='+', choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--repeat', type=int, default=3, help='timed runs per measurement (median)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--json', metavar='PATH', help='also write the figures as JSON here')
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error('--repeat must be >= 1')
    if not _ext.available():
        print(f'benchmark_ops: the fused extension is not available: {_ext.load_error()}', file=sys.stderr)
        return 2
    from lip_det.ops import fused
    if args.threads:
        torch.set_num_threads(args.threads)

    report = {'torch': torch.__version__, 'threads': torch.get_num_threads(),
              'cpu': platform.processor() or platform.machine(), 'repeat': args.repeat,
              'floor': {}, 'results': []}
    header = (f"{'shape':<28}{'method':<8}{'impl':<7}{'fwd ms':>9}{'fwd+bwd ms':>12}"
              f"{'peak MB':>9}{'fwd/floor':>10}")
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(header)
    print('-' * len(header))
    for shape_name in args.shapes:
        shape, k, s, p = SHAPES[shape_name]
        geom = (k, s, p, False)
        label = f"{shape_name} {'x'.join(map(str, shape))}"
        floors = {}
        for method in args.methods:
            inputs = make_inputs(method, shape)
            n_inputs = len(inputs)
            if n_inputs not in floors:
                floors[n_inputs] = copy_floor_ms(inputs, args.repeat)
            floor = floors[n_inputs]
            row = {'shape_name': shape_name, 'shape': list(shape), 'kernel': list(k), 'stride': list(s),
                   'padding': list(p), 'method': method, 'copy_floor_ms': floor,
                   'fused': measure(fused, method, inputs, geom, args.repeat),
                   'plain': measure(reference, method, inputs, geom, args.repeat)}
            f, pl = row['fused'], row['plain']
            row['ratios'] = {
                'fwd_speedup': pl['fwd_ms'] / f['fwd_ms'],
                'fwd_bwd_speedup': pl['fwd_bwd_ms'] / f['fwd_bwd_ms'],
                'fwd_bwd_peak_memory_ratio': f['fwd_bwd_peak_bytes'] / max(pl['fwd_bwd_peak_bytes'], 1),
                'fused_fwd_over_floor': f['fwd_ms'] / floor,
                'plain_fwd_over_floor': pl['fwd_ms'] / floor}
            report['results'].append(row)
            for impl, r in (('fused', f), ('plain', pl)):
                print(f"{label:<28}{method:<8}{impl:<7}{r['fwd_ms']:>9.1f}{r['fwd_bwd_ms']:>12.1f}"
                      f"{r['fwd_bwd_peak_bytes'] / 2**20:>9.1f}{r['fwd_ms'] / floor:>10.2f}")
            ra = row['ratios']
            print(f"{'':<28}{method:<8}{'ratio':<7}{'x%.2f' % ra['fwd_speedup']:>9}"
                  f"{'x%.2f' % ra['fwd_bwd_speedup']:>12}{ra['fwd_bwd_peak_memory_ratio']:>9.2f}")
        report['floor'][shape_name] = {f'{n}_inputs_copy_ms': v for n, v in floors.items()}
        print(f"{label:<28}bandwidth floor (copy of the inputs): "
              + ', '.join(f'{n} input(s) {v:.1f} ms' for n, v in sorted(floors.items())))
    print('ratio row: plain/fused time (speed-up) and fused/plain peak memory during fwd+bwd')
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(report, fh, indent=2)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Fused vs plain-PyTorch pooling ops on this CPU or GPU: time, peak memory and the bandwidth floor.

For each method (LIP; LIP with InstanceNorm and SoftGate fused, ``lip_gated``, the op LIP-ResNet
calls; SoftPool, Max-Ent, Gaussian, adaPool) and detection-sized shape, measures side by
side in one run: forward time (inference, no autograd), forward+backward time, and the peak
memory allocated above the inputs during forward+backward, of three implementations:

- ``fused``: the compiled operators (``lip_det.ops.fused``);
- ``plain``: ``lip_det.ops.reference``, the plain-PyTorch fallback (window-max subtraction,
  exact for every geometry);
- ``expr``: the authors' expression, e.g. ``avg_pool(x·e^l) / avg_pool(e^l)`` for LIP (the
  fastest plain-PyTorch form; it overflows once logits pass ~88 in float32). adaPool's authors
  ship CUDA only: its ``expr`` is the ``F.unfold`` form a user would write instead (every
  window's pixels materialised, softmax over them).

Also measures the memory-bandwidth floor of each shape: copying the op's input tensors into
preallocated buffers (each input byte read once and written once), and states each forward as
a multiple of it.

    python tools/benchmark_ops.py [--json results.json] [--repeat 5] [--methods lip soft]
                                  [--device cuda] [--downscale 4]

``--device cuda`` runs everything on the GPU (the inputs are drawn on the CPU, so they are the
same values on every device): times are taken between ``torch.cuda.synchronize()`` calls, and
peak memory is ``torch.cuda.max_memory_allocated()`` above what was allocated before the call
(the fused kernels' small per-window buffers included). ``--downscale K`` divides the spatial
size of every shape by K, for a quick run.

Times are medians over ``--repeat`` rounds after one warm-up; each round calls the copy floor and
every implementation's forward and forward+backward once, back to back, and the ratios (fused
forward over the floor, speed-ups) are medians of the per-round ratios, so a slow spell of the
machine (a VM with bursty CPU steal) weighs on both sides of a ratio. Wall time and process CPU
time (all threads) are both reported. Peak memory
comes from the PyTorch profiler's memory timeline (tensors allocated through the CPU
allocator, which includes every gradient and temporary; the fused kernels' per-thread row
buffers, O(kernel·width) floats, are plain heap memory and not counted). The process CPU time
means little on a GPU, where the host mostly waits.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from typing import Callable, Dict, List, Sequence, Tuple

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch.nn.functional as F  # noqa: E402

from lip_det.ops import _ext, reference  # noqa: E402

SHAPES = {'lip_stem': ((2, 64, 400, 672), (3, 3), (2, 2), (1, 1)),
          'stage_transition': ((2, 256, 200, 336), (3, 3), (2, 2), (1, 1))}
METHODS = ('lip', 'lip_gated', 'soft', 'maxent', 'gauss', 'ada')
OP_NAMES = {'lip': 'lip_pool2d', 'lip_gated': 'lip_pool2d_gated', 'soft': 'soft_pool2d',
            'maxent': 'maxent_pool2d', 'gauss': 'gauss_pool2d', 'ada': 'ada_pool2d'}
# Arguments between the tensors and the window geometry: lip_gated's InstanceNorm eps and
# SoftGate coeff, LIP-ResNet's values.
SCALARS = {'lip_gated': (1e-5, 12.0)}
# Where the benchmark runs; main() sets it from --device.
DEVICE = torch.device('cpu')


def _sync() -> None:
    """Wait for queued kernels: CUDA launches return before the work is done."""
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize(DEVICE)


def make_inputs(method: str, shape: Sequence[int], seed: int = 0) -> List[torch.Tensor]:
    """x plus the method's second tensor, in the ranges the layers produce, on DEVICE."""
    return [t.to(DEVICE) for t in _cpu_inputs(method, shape, seed)]


def _cpu_inputs(method: str, shape: Sequence[int], seed: int) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    n, c = shape[:2]
    if method == 'lip':  # SoftGate output: sigmoid·12
        return [x, torch.randn(shape, generator=gen).sigmoid_().mul_(12.0)]
    if method == 'lip_gated':  # a logit conv's output and its InstanceNorm's affine parameters
        return [x, torch.randn(shape, generator=gen), torch.rand(c, generator=gen) + 0.5,
                torch.randn(c, generator=gen)]
    if method == 'maxent':  # GFGP: one λ in (0, 1) per sample and channel
        return [x, torch.randn(n, c, 1, 1, generator=gen).sigmoid_()]
    if method == 'gauss':  # η = softplus(...) per sample and channel
        return [x, torch.nn.functional.softplus(torch.randn(n, c, 1, 1, generator=gen))]
    if method == 'ada':  # AdaPool2d: β = sigmoid(θ) per channel
        return [x, torch.randn(1, c, 1, 1, generator=gen).sigmoid_()]
    return [x]


class Expression:
    """The authors' plain-PyTorch expressions (avg_pool of exponentials), same signatures."""

    @staticmethod
    def _weighted(x, logit, k, s, p, ceil_mode):
        w = logit.exp()
        return F.avg_pool2d(x * w, k, s, p, ceil_mode) / F.avg_pool2d(w, k, s, p, ceil_mode)

    @staticmethod
    def lip_pool2d(x, logit, k, s, p, ceil_mode=False):
        return Expression._weighted(x, logit, k, s, p, ceil_mode)

    @staticmethod
    def lip_pool2d_gated(x, pre, weight, bias, eps, coeff, k, s, p, ceil_mode=False):
        # LIP-ResNet's logit tail as the reference writes it: InstanceNorm, sigmoid·coeff, LIP.
        logit = torch.sigmoid(F.instance_norm(pre, weight=weight, bias=bias, eps=eps)) * coeff
        return Expression._weighted(x, logit, k, s, p, ceil_mode)

    @staticmethod
    def soft_pool2d(x, k, s, p, ceil_mode=False):
        return Expression._weighted(x, x, k, s, p, ceil_mode)

    @staticmethod
    def maxent_pool2d(x, lam, k, s, p, ceil_mode=False):
        return Expression._weighted(x, lam * x, k, s, p, ceil_mode)

    @staticmethod
    def gauss_pool2d(x, eta, k, s, p, ceil_mode=False):
        mean = F.avg_pool2d(x, k, s, p, ceil_mode, count_include_pad=False)
        var = F.avg_pool2d(x * x, k, s, p, ceil_mode, count_include_pad=False) - mean * mean
        return mean + eta * var.clamp(min=reference.GAUSS_VAR_EPS).sqrt()

    @staticmethod
    def ada_pool2d(x, beta, k, s, p, ceil_mode=False):
        if ceil_mode:
            raise ValueError('the unfold expression of adaPool covers ceil_mode=False only')
        n, c, h, w = x.shape
        oh = (h + 2 * p[0] - k[0]) // s[0] + 1
        ow = (w + 2 * p[1] - k[1]) // s[1] + 1
        cols = F.unfold(x, k, padding=p, stride=s).view(n, c, k[0] * k[1], oh * ow)
        valid = F.unfold(x.new_ones(1, 1, h, w), k, padding=p, stride=s).view(1, 1, -1, oh * ow) > 0
        mean = (cols * valid).sum(2, keepdim=True) / valid.sum(2, keepdim=True)
        dsc = 2 * (cols * mean).abs() / (cols * cols + mean * mean).clamp_min(1e-12)
        w_dsc = torch.softmax(dsc.masked_fill(~valid, float('-inf')), dim=2)
        w_max = torch.softmax(cols.masked_fill(~valid, float('-inf')), dim=2)
        y = beta.view(1, c, 1) * (w_dsc * cols).sum(2) + (1 - beta.view(1, c, 1)) * (w_max * cols).sum(2)
        return y.view(n, c, oh, ow)


def one_call_ms(fn: Callable[[], object]) -> Tuple[float, float]:
    """Wall and process-CPU milliseconds of one call of fn."""
    _sync()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    _sync()
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def interleaved_ms(fns: Dict[str, Callable[[], object]], repeat: int,
                   warmup: int = 1) -> Dict[str, List[Tuple[float, float]]]:
    """(wall, CPU) ms of every fn, `repeat` rounds that each call every fn once in turn.

    The machine's speed drifts (a VM with bursty CPU steal): timings taken in the same round are
    close in time, so ratios are formed per round before the median is taken.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: Dict[str, List[Tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            samples[name].append(one_call_ms(fn))
    return samples


def median_of(samples: List[Tuple[float, float]], which: int = 0) -> float:
    """Median wall (which=0) or CPU (which=1) ms."""
    return statistics.median(s[which] for s in samples)


def median_ratio(num: List[Tuple[float, float]], den: List[Tuple[float, float]], which: int = 0) -> float:
    """Median over rounds of num/den (wall or CPU)."""
    return statistics.median(a[which] / b[which] for a, b in zip(num, den))


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated above the starting point while fn runs (profiler memory timeline;
    on CUDA the caching allocator's own peak counter)."""
    if DEVICE.type == 'cuda':
        _sync()
        torch.cuda.reset_peak_memory_stats(DEVICE)
        start = torch.cuda.memory_allocated(DEVICE)
        fn()
        _sync()
        return max(torch.cuda.max_memory_allocated(DEVICE) - start, 0)
    acts = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=acts, profile_memory=True, record_shapes=True,
                                with_stack=True) as prof:
        # The timeline's first point holds the tensors alive before fn (or, when none is seen,
        # this one): the peak is counted above it.
        start = torch.empty(1)
        fn()
        del start
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'memory.json')
        # The profiler's public export (deprecated in favour of a CUDA-only snapshot API; the CPU
        # has no other allocation timeline).
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)
            prof.export_memory_timeline(path, device='cpu')  # [times, bytes by category]
        with open(path) as f:
            _, sizes = json.load(f)
    totals = [sum(s) for s in sizes]
    return max(max(totals) - totals[0], 0) if totals else 0


def timed_calls(impl, method: str, inputs: List[torch.Tensor], geom: Tuple) -> Dict[str, Callable]:
    """The forward (inference) and forward+backward of one implementation, as closures."""
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
        for t in leaves:
            t.grad = None

    return {'fwd': forward, 'fwd_bwd': forward_backward}


def memory(calls: Dict[str, Callable], inputs: List[torch.Tensor]) -> Dict[str, int]:
    """Peak bytes of forward+backward above the inputs, and the part that is not the results."""
    res = {'fwd_bwd_peak_bytes': peak_bytes(calls['fwd_bwd'])}
    # The op's results (output and input gradients) must exist in any implementation; the rest
    # of the peak is working memory.
    out_bytes = calls['fwd']().numel() * inputs[0].element_size()
    res['result_bytes'] = out_bytes + sum(t.numel() * t.element_size() for t in inputs)
    res['fwd_bwd_work_bytes'] = max(res['fwd_bwd_peak_bytes'] - res['result_bytes'], 0)
    return res


def copy_floor(inputs: List[torch.Tensor]) -> Callable[[], None]:
    """Read every input byte once and write it once: a plain copy into preallocated buffers."""
    bufs = [torch.empty_like(t) for t in inputs]

    def copy():
        for b, t in zip(bufs, inputs):
            b.copy_(t)

    return copy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shapes', nargs='+', choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--repeat', type=int, default=5, help='timed rounds (medians over them)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--json', metavar='PATH', help='also write the figures as JSON here')
    parser.add_argument('--device', default='cpu',
                        help="where the ops run: cpu (default), cuda or cuda:N")
    parser.add_argument('--downscale', type=int, default=1, metavar='K',
                        help='divide the height and width of every shape by K (a quick run)')
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error('--repeat must be >= 1')
    if args.downscale < 1:
        parser.error('--downscale must be >= 1')
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        parser.error(f'--device: {exc}')
    if device.type not in ('cpu', 'cuda'):
        parser.error(f'--device must be cpu or cuda[:N], got {args.device!r}')
    if not _ext.available():
        print(f'benchmark_ops: the fused extension is not available: {_ext.load_error()}', file=sys.stderr)
        return 2
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            print('benchmark_ops: --device cuda, but torch.cuda.is_available() is False', file=sys.stderr)
            return 2
        if not torch._C._dispatch_has_kernel_for_dispatch_key('lip_det::lip_pool2d', 'CUDA'):
            print('benchmark_ops: lip_det._C was built without CUDA kernels (rebuild with FORCE_CUDA=1)',
                  file=sys.stderr)
            return 2
    global DEVICE
    DEVICE = device
    from lip_det.ops import fused
    if args.threads:
        torch.set_num_threads(args.threads)

    impls = {'fused': fused, 'plain': reference, 'expr': Expression}
    report = {'torch': torch.__version__, 'threads': torch.get_num_threads(),
              'cpu': platform.processor() or platform.machine(), 'repeat': args.repeat,
              'device': str(device), 'downscale': args.downscale,
              'load_average': list(os.getloadavg()), 'floor': {}, 'results': []}
    where = f'{torch.get_num_threads()} threads'
    if device.type == 'cuda':
        report['gpu'] = torch.cuda.get_device_name(device)
        report['cuda'] = torch.version.cuda
        where = f"{report['gpu']} (CUDA {torch.version.cuda}), host {where}"
    header = (f"{'shape':<24}{'method':<8}{'impl':<7}{'fwd ms':>8}{'(cpu)':>8}{'fwd+bwd ms':>12}{'(cpu)':>8}"
              f"{'peak MB':>9}{'work MB':>9}{'fwd/floor':>10}{'(cpu)':>7}")
    print(f'torch {torch.__version__}, {where}, load average {os.getloadavg()[0]:.1f} at start')
    print(header)
    print('-' * len(header))
    for shape_name in args.shapes:
        shape, k, s, p = SHAPES[shape_name]
        shape = tuple(shape[:2]) + tuple(max(-(-d // args.downscale), kk) for d, kk in zip(shape[2:], k))
        geom = (k, s, p, False)
        label = f"{shape_name[:10]} {'x'.join(map(str, shape))}"
        floors: Dict[int, List[float]] = {}
        for method in args.methods:
            inputs = make_inputs(method, shape)
            # Inputs the size of x count; a per-(n, c) λ/η or per-channel weight is noise next to them.
            full = [t for t in inputs if t.numel() == inputs[0].numel()]
            n_inputs = len(full)
            args_geom = SCALARS.get(method, ()) + geom
            # The three implementations must compute the same thing before their times compare.
            with torch.no_grad():
                outs = {name: getattr(impl, OP_NAMES[method])(*inputs, *args_geom)
                        for name, impl in impls.items()}
            diffs = {name: (outs[name] - outs['fused']).abs().max().item() for name in impls if name != 'fused'}
            for name, diff in diffs.items():
                if not diff <= 1e-3:
                    raise SystemExit(f'benchmark_ops: {name} {method} differs from fused by {diff}')
            del outs
            calls = {name: timed_calls(impl, method, inputs, args_geom) for name, impl in impls.items()}
            fns = {'floor': copy_floor(full)}
            fns.update({f'{name}_{mode}': fn for name, c in calls.items() for mode, fn in c.items()})
            t = interleaved_ms(fns, args.repeat)
            floor, floor_cpu = median_of(t['floor']), median_of(t['floor'], 1)
            floors.setdefault(n_inputs, []).extend(s[0] for s in t['floor'])
            row = {'shape_name': shape_name, 'shape': list(shape), 'kernel': list(k), 'stride': list(s),
                   'padding': list(p), 'method': method, 'full_size_inputs': n_inputs,
                   'copy_floor_ms': floor, 'copy_floor_cpu_ms': floor_cpu, 'max_abs_diff_vs_fused': diffs}
            for name in impls:
                row[name] = {'fwd_ms': median_of(t[f'{name}_fwd']), 'fwd_cpu_ms': median_of(t[f'{name}_fwd'], 1),
                             'fwd_bwd_ms': median_of(t[f'{name}_fwd_bwd']),
                             'fwd_bwd_cpu_ms': median_of(t[f'{name}_fwd_bwd'], 1),
                             'fwd_ms_rounds': [s[0] for s in t[f'{name}_fwd']],
                             'fwd_bwd_ms_rounds': [s[0] for s in t[f'{name}_fwd_bwd']]}
                row[name].update(memory(calls[name], inputs))
            row['floor_ms_rounds'] = [s[0] for s in t['floor']]
            f = row['fused']
            # Ratios are medians of per-round ratios (see interleaved_ms), not ratios of medians.
            row['ratios'] = {'fused_fwd_over_floor': median_ratio(t['fused_fwd'], t['floor']),
                             'fused_fwd_cpu_over_floor_cpu': median_ratio(t['fused_fwd'], t['floor'], 1)}
            for base in ('plain', 'expr'):
                b = row[base]
                row['ratios'].update({
                    f'fwd_speedup_vs_{base}': median_ratio(t[f'{base}_fwd'], t['fused_fwd']),
                    f'fwd_bwd_speedup_vs_{base}': median_ratio(t[f'{base}_fwd_bwd'], t['fused_fwd_bwd']),
                    f'fwd_bwd_cpu_speedup_vs_{base}': median_ratio(t[f'{base}_fwd_bwd'], t['fused_fwd_bwd'], 1),
                    f'fwd_bwd_peak_memory_ratio_vs_{base}': f['fwd_bwd_peak_bytes'] / max(b['fwd_bwd_peak_bytes'], 1),
                    f'fwd_bwd_work_memory_ratio_vs_{base}': f['fwd_bwd_work_bytes'] / max(b['fwd_bwd_work_bytes'], 1)})
            report['results'].append(row)
            for name in impls:
                r = row[name]
                print(f"{label:<24}{method:<8}{name:<7}{r['fwd_ms']:>8.1f}{r['fwd_cpu_ms']:>8.1f}"
                      f"{r['fwd_bwd_ms']:>12.1f}{r['fwd_bwd_cpu_ms']:>8.1f}{r['fwd_bwd_peak_bytes'] / 2**20:>9.1f}"
                      f"{r['fwd_bwd_work_bytes'] / 2**20:>9.1f}"
                      + (f"{row['ratios']['fused_fwd_over_floor']:>10.2f}"
                         f"{row['ratios']['fused_fwd_cpu_over_floor_cpu']:>7.2f}" if name == 'fused' else ''))
            ra = row['ratios']
            for base in ('plain', 'expr'):
                print(f"{'':<24}{method:<8}{'/' + base:<7}{'x%.1f' % ra[f'fwd_speedup_vs_{base}']:>8}{'':>8}"
                      f"{'x%.1f' % ra[f'fwd_bwd_speedup_vs_{base}']:>12}"
                      f"{'x%.1f' % ra[f'fwd_bwd_cpu_speedup_vs_{base}']:>8}"
                      f"{ra[f'fwd_bwd_peak_memory_ratio_vs_{base}']:>9.2f}"
                      f"{ra[f'fwd_bwd_work_memory_ratio_vs_{base}']:>9.3f}")
        report['floor'][shape_name] = {f'{n}_inputs_copy_ms_rounds': v for n, v in floors.items()}
        print(f"{label:<24}bandwidth floor (copy of the inputs, every round): "
              + ', '.join(f"{n} input(s) {'/'.join(f'{ms:.0f}' for ms in v)} ms" for n, v in sorted(floors.items())))
    report['load_average_end'] = list(os.getloadavg())
    print("'/plain', '/expr' rows: that implementation's time over fused (speed-up), and fused "
          'memory over its memory during fwd+bwd: peak above the inputs, and work = peak minus the '
          'results (output + input gradients). Times are medians over the rounds; fwd/floor and '
          'the speed-ups are medians of the per-round ratios (each round times the copy floor and '
          'every implementation back to back).')
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(report, fh, indent=2)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

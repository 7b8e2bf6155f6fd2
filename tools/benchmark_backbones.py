"""Compare the pooled backbones with ResNet: parameters, FLOPs, CPU time and peak memory.

For each backbone: parameters (backbone, and with the 1000-class fc of the classification model
the papers count: last-stage channels x 1000 + 1000, the channels read from the built backbone,
512 for ResNet-18/34, 2048 for ResNet-50 and deeper, 1024 for DenseNet-121), GFLOPs at 224x224
counted by mmengine's ``FlopAnalyzer`` (one multiply-add = one FLOP, as in the papers' 4.12G for
ResNet-50), and CPU forward / forward+backward time and peak memory at 224x224 and 800x1216, with
ratios to the plain ResNet of the same depth.

FLOPs of the pooling ops: mmengine counts convs, norms and linears only (a pooling op, fused or
plain-PyTorch, adds nothing to its count), so each LIP / SoftPool / Max-Ent / Gaussian pooling
layer is counted by a forward hook from its input, its output and its window of k pixels: per
input element one FLOP for ``exp`` (plus one for ``λ·x`` in Max-Ent), per output ``2k + 1`` (the
weighted sum and the weight sum over the window, one division), Gaussian ``2k + 4``. The convs
and norms of the layers' logit / λ / η nets are mmengine's.

Timing and memory: every (backbone, size, pass) runs in a fresh subprocess (one at a time, all
threads), which builds the model, resets the process's peak-RSS mark, runs ``--warmup`` untimed
and ``--iters`` timed passes, and reports the median time and the peak RSS above the built model
(activations, gradients, workspaces). Forward: eval mode under ``no_grad``; forward+backward:
train mode as in a detector (``norm_eval=True``), loss = sum of the output means. With
``--rounds N`` every measurement is repeated N times, the backbones interleaved (a backbone and its
baseline run back to back); times are medians over the rounds and time ratios are medians of the
per-round ratios.

Usage:
    python tools/benchmark_backbones.py [--depths 50 [101]] [--models R50 LIP-R50 ...]
        [--iters 3] [--big-iters 1] [--warmup 1] [--rounds 1] [--batch 4] [--big-batch 1] [--no-big]
        [--threads N]
        [--json PATH]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

NUM_CLASSES = 1000  # the classifier whose fc the papers' parameter counts include
SMALL = (224, 224)
BIG = (800, 1216)


def model_specs(depths: Sequence[int]) -> Dict[str, dict]:
    """Benchmark name -> backbone config, for every requested depth."""
    specs: Dict[str, dict] = {}
    for d in depths:
        specs[f'R{d}'] = dict(type='ResNet', depth=d)
        specs[f'LIP-R{d}'] = dict(type='LIPResNet', depth=d)
        specs[f'LIP-R{d}-proj'] = dict(type='LIPResNet', depth=d, logit_module='projection')
        specs[f'SoftPool-R{d}'] = dict(type='SoftPoolResNet', depth=d)
        specs[f'MaxEnt-R{d}'] = dict(type='MaxEntResNet', depth=d)
        specs[f'Gauss-R{d}'] = dict(type='GaussianResNet', depth=d)
    specs['LIP-D121'] = dict(type='LIPDenseNet', depth=121)
    return specs


def baseline_of(name: str, cfg: dict) -> str:
    """The plain ResNet a row is compared with."""
    return 'R50' if cfg['type'] == 'LIPDenseNet' else f"R{cfg['depth']}"


def build(cfg: dict) -> torch.nn.Module:
    """Build a backbone through mmdet's registry, as a config file would."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from mmengine.logging import MMLogger

    import lip_det  # noqa: F401  (registers the backbones)
    register_all_modules()
    model = MODELS.build(dict(cfg))
    MMLogger.get_current_instance().setLevel('WARNING')  # init_weights logs every parameter
    model.init_weights()
    return model


def fc_params(model: torch.nn.Module, num_classes: int = NUM_CLASSES) -> int:
    """Parameters of the classification fc on ``model``: its last output's channels (the last
    stage with the default ``out_indices``; read from a 1x3x64x64 forward) x classes + biases."""
    training = model.training
    model.eval()
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 64, 64))
    model.train(training)
    last = outs[-1] if isinstance(outs, (tuple, list)) else outs
    return int(last.shape[1]) * num_classes + num_classes


# ----------------------------------------------------------------------------- FLOPs
def _pool_formulas() -> Dict[type, Tuple[int, int, int]]:
    """Pooling layer class -> (FLOPs per input element, per window pixel of an output, per
    output); a layer takes the entry of the nearest class in its hierarchy."""
    from lip_det.layers import (GaussianPool2d, LIPPool2d, MaxEntPool2d, SoftPool1d, SoftPool2d,
                                SoftPool3d)
    from lip_det.layers.lip_logits import LIPLayer  # the LIP layers of the backbones
    lip = soft = (1, 2, 1)
    return {LIPLayer: lip, LIPPool2d: lip, SoftPool1d: soft, SoftPool2d: soft, SoftPool3d: soft,
            MaxEntPool2d: (2, 2, 1), GaussianPool2d: (0, 2, 4)}


def _window_pixels(kernel, nd: int) -> int:
    kernel = (kernel,) * nd if isinstance(kernel, int) else tuple(kernel) * (nd // len(kernel))
    pixels = 1
    for k in kernel:
        pixels *= int(k)
    return pixels


def pool_flops(model: torch.nn.Module, size=SMALL) -> int:
    """FLOPs of the pooling ops in one forward of a 3 x ``size`` image, counted by forward hooks
    on the pooling layers from their input and output sizes and window (nothing is replaced)."""
    from lip_det.layers.pooling import fit_window
    formulas = _pool_formulas()
    total = [0]

    def hook(module, args, kwargs, output) -> None:
        per_input, per_pixel, per_output = module_formula[module]
        x = args[0] if args else kwargs['x']
        nd = getattr(module, 'nd', 2)
        # the window the op gets: fitted to maps smaller than the kernel, as the layer does
        kernel, _ = fit_window(x, module.kernel_size, module.stride, module.padding, nd)
        total[0] += (x.numel() * per_input
                     + output.numel() * (per_pixel * _window_pixels(kernel, nd) + per_output))

    module_formula: Dict[torch.nn.Module, Tuple[int, int, int]] = {}
    for module in model.modules():  # each pooling layer's forward runs one pooling op
        formula = next((formulas[c] for c in type(module).__mro__ if c in formulas), None)
        if formula is not None:
            module_formula[module] = formula
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in module_formula]
    model.eval()
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, *size))
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def count_flops(model: torch.nn.Module, size=SMALL) -> Dict[str, float]:
    """Total and pooling-op GFLOPs of one 3 x ``size`` image."""
    from mmengine.analysis import FlopAnalyzer
    pool = pool_flops(model, size)
    model.eval()
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.randn(1, 3, *size),))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        traced = analyzer.total()
    return dict(gflops=(traced + pool) / 1e9, pool_gflops=pool / 1e9)


# ----------------------------------------------------------------------------- time and memory
def _cpu_jiffies() -> Optional[List[int]]:
    """(steal, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return [fields[7] if len(fields) > 7 else 0, sum(fields[:8])]


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if refused."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_bytes() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(spec: dict) -> dict:
    """Time one (backbone, size, pass) and measure its peak memory; runs in a subprocess."""
    from lip_det.ops import backend
    if spec.get('threads'):
        torch.set_num_threads(spec['threads'])
    torch.manual_seed(0)
    model = build(spec['cfg'])
    x = torch.randn(spec['batch'], 3, *spec['size'])
    backward = spec['mode'] == 'fwd_bwd'
    model.train(backward)

    def step() -> None:
        if backward:
            outs = model(x)
            sum(o.mean() for o in outs).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(x)

    gc.collect()
    base = _rss_bytes()
    exact = _reset_peak()
    for _ in range(spec['warmup']):
        step()
    times, cpu = [], []
    for _ in range(spec['iters']):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return dict(ms=statistics.median(times) * 1e3 / spec['batch'],
                cpu_ms=statistics.median(cpu) * 1e3 / spec['batch'],
                peak_mib=max(0, _peak_bytes() - base) / 2**20, exact_peak=exact,
                op_path=backend(), threads=torch.get_num_threads())


def measure(cfg: dict, size, batch: int, mode: str, iters: int, warmup: int,
            threads: Optional[int] = None) -> dict:
    """``run_child`` in a fresh interpreter, so that peaks and caches do not mix."""
    spec = dict(cfg=cfg, size=list(size), batch=batch, mode=mode, iters=iters, warmup=warmup,
                threads=threads)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', json.dumps(spec)],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f'benchmark child failed for {cfg} {size} {mode}:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def _ratio(value: Optional[float], base: Optional[float]) -> Optional[float]:
    return None if value is None or not base else value / base


def benchmark(args) -> dict:
    """Measure every requested backbone; return the JSON-able report."""
    specs = model_specs(args.depths)
    names = list(args.models or [n for n in specs if n != 'LIP-D121'])
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise SystemExit(f'unknown --models {unknown}; choose from {sorted(specs)}')
    for n in list(names):  # every ratio needs its baseline
        base = baseline_of(n, specs[n])
        if base not in names:
            names.insert(0, base)
    sizes = [('224', SMALL, args.batch, args.iters)]
    if not args.no_big:
        sizes.append(('800x1216', BIG, args.big_batch, args.big_iters))
    rows = []
    for name in names:
        cfg = specs[name]
        model = build(cfg)
        n = sum(p.numel() for p in model.parameters())
        fc = fc_params(model)
        rows.append(dict(model=name, cfg=cfg, params_m=n / 1e6, params_with_fc_m=(n + fc) / 1e6,
                         **count_flops(model)))
        del model
        gc.collect()
    # Rounds interleave the backbones (every backbone once per round, per size and pass), so a
    # slow spell of the machine hits all of them instead of skewing one ratio.
    samples: Dict[tuple, List[dict]] = {}
    # A virtual machine's host may take CPU time away (steal): wall times then stretch while
    # process CPU time does not. Recorded so that a reader knows how far to trust wall times.
    jiffies0 = _cpu_jiffies()
    for rnd in range(args.rounds):
        for label, size, batch, iters in sizes:
            for mode in ('fwd', 'fwd_bwd'):
                for row in rows:
                    r = measure(row['cfg'], size, batch, mode, iters, args.warmup, args.threads)
                    samples.setdefault((row['model'], label, mode), []).append(r)
                    print(f'  [{rnd + 1}/{args.rounds}] {row["model"]:16s} {label:>8s} {mode:7s} '
                          f'{r["ms"]:9.1f} ms/img (CPU {r["cpu_ms"]:9.1f} ms) '
                          f'{r["peak_mib"]:8.0f} MiB  ({r["op_path"]} ops)', file=sys.stderr, flush=True)
    jiffies1 = _cpu_jiffies()
    steal = None
    if jiffies0 and jiffies1 and jiffies1[1] > jiffies0[1]:
        steal = (jiffies1[0] - jiffies0[0]) / (jiffies1[1] - jiffies0[1])
    for row in rows:
        for label, *_ in sizes:
            for mode in ('fwd', 'fwd_bwd'):
                runs = samples[(row['model'], label, mode)]
                for key in ('ms', 'cpu_ms', 'peak_mib'):
                    row[f'{mode}_{key}_{label}'] = statistics.median(r[key] for r in runs)
                row[f'{mode}_ms_{label}_rounds'] = [r['ms'] for r in runs]
                row[f'{mode}_cpu_ms_{label}_rounds'] = [r['cpu_ms'] for r in runs]
                row['op_path'] = runs[-1]['op_path']
                row['threads'] = runs[-1]['threads']
    by_name = {r['model']: r for r in rows}
    for r in rows:
        base = by_name[baseline_of(r['model'], r['cfg'])]
        for key in list(r):
            if key.startswith(('gflops', 'fwd_ms', 'fwd_bwd_ms', 'fwd_cpu', 'fwd_bwd_cpu',
                               'fwd_peak', 'fwd_bwd_peak')) and not key.endswith('_rounds'):
                rounds = f'{key}_rounds'
                if rounds in r and rounds in base:
                    # Times: the median of per-round ratios (a backbone and its baseline ran
                    # back to back in each round), steadier than a ratio of medians.
                    r[f'{key}_ratio'] = statistics.median(_ratio(a, b) for a, b in zip(r[rounds], base[rounds]))
                else:
                    r[f'{key}_ratio'] = _ratio(r[key], base[key])
    paths = sorted({r['op_path'] for r in rows})
    return dict(command='python ' + ' '.join([os.path.relpath(__file__, REPO)] + sys.argv[1:]),
                op_path=paths[0] if len(paths) == 1 else paths,
                torch=torch.__version__, threads=rows[0]['threads'] if rows else None,
                load_average=' '.join(f'{v:.1f}' for v in os.getloadavg()),
                batch_224=args.batch, batch_800x1216=args.big_batch, iters=args.iters,
                big_iters=args.big_iters, warmup=args.warmup, rounds=args.rounds,
                cpu_steal=steal, rows=rows)


def format_table(report: dict) -> str:
    """The report as a markdown table (figures and ratios to the plain ResNet)."""
    def f(row, key, digits=1):
        v = row.get(key)
        if v is None:
            return '-'
        ratio = row.get(f'{key}_ratio')
        text = f'{v:.{digits}f}'
        return text if ratio is None or row['model'] == baseline_of(row['model'], row['cfg']) \
            else f'{text} ({ratio:.2f}x)'

    sizes = [s for s in ('224', '800x1216') if f'fwd_ms_{s}' in (report['rows'] or [{}])[0]]
    head = ['backbone', 'params (M, +fc)', 'GFLOPs 224 (pool ops)']
    for s in sizes:
        head += [f'fwd ms {s}', f'fwd+bwd ms {s}', f'fwd+bwd CPU ms {s}', f'fwd+bwd peak MiB {s}']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in report['rows']:
        cells = [r['model'], f"{r['params_m']:.3f} ({r['params_with_fc_m']:.3f})",
                 f"{f(r, 'gflops', 2)} ({r['pool_gflops']:.2f})"]
        for s in sizes:
            cells += [f(r, f'fwd_ms_{s}'), f(r, f'fwd_bwd_ms_{s}'), f(r, f'fwd_bwd_cpu_ms_{s}'),
                      f(r, f'fwd_bwd_peak_mib_{s}', 0)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    steal = report.get('cpu_steal')
    steal_note = '' if steal is None else f", CPU steal {100 * steal:.0f}% during the run"
    note = (f"op path: {report['op_path']}; torch {report['torch']}, {report['threads']} threads, "
            f"load average {report['load_average']}{steal_note}; CPU ms = process CPU time (all threads); "
            f"ms per image, batch {report['batch_224']} at 224 and {report['batch_800x1216']} at "
            f"800x1216; median over {report['rounds']} interleaved round(s) of the median of "
            f"{report['iters']} / {report['big_iters']} timed passes after {report['warmup']} "
            f"warm-up; time ratios are medians of the per-round ratios; peak = peak RSS above the "
            f"built model.")
    return '\n'.join(lines + ['', note])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--depths', type=int, nargs='+', default=[50], choices=[18, 34, 50, 101, 152])
    p.add_argument('--models', nargs='+', help='subset of names, e.g. R50 LIP-R50 LIP-D121')
    p.add_argument('--iters', type=int, default=3, help='timed passes at 224x224')
    p.add_argument('--big-iters', type=int, default=1, help='timed passes at 800x1216')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--rounds', type=int, default=1,
                   help='repeat every measurement this often, backbones interleaved; report medians')
    p.add_argument('--batch', type=int, default=4, help='batch at 224x224')
    p.add_argument('--big-batch', type=int, default=1, help='batch at 800x1216')
    p.add_argument('--no-big', action='store_true', help='skip 800x1216')
    p.add_argument('--threads', type=int, help='torch threads in the timed runs (default: torch\'s)')
    p.add_argument('--json', metavar='PATH', help='also write the figures as JSON')
    p.add_argument('--child', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ('iters', 'big_iters', 'batch', 'big_batch', 'rounds'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        p.error('--warmup must be >= 0')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    report = benchmark(args)
    print(format_table(report))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()

"""Statistics of a multi-seed backbone comparison: per-method spread and paired deltas with a CI.

Each method (a config) is trained once per seed; the same seed gives every method the same data
order and augmentation, so the difference of two methods *at the same seed* cancels what the
seed does to both. A method's gain over the baseline is therefore the mean of the per-seed
(paired) differences, with a two-sided Student-t confidence interval over seeds:
``mean ± t(1 - α/2, n - 1) · sd / sqrt(n)``. The interval assumes the per-seed differences are
roughly normal; with 3-5 seeds it is wide, which is the honest answer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping, Optional, Sequence

__all__ = ['Spread', 'PairedDelta', 'spread', 'paired_delta', 't_quantile', 'aggregate',
           'format_markdown', 'plot_comparison', 'per_class_deltas']


@dataclass
class Spread:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and count of one metric."""

    mean: float
    std: float
    n: int

    def as_dict(self) -> Dict[str, float]:
        """Plain-dict form for JSON."""
        return asdict(self)


@dataclass
class PairedDelta:
    """Per-seed differences ``other - base`` of one metric, summarised with a t interval."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int
    confidence: float

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def as_dict(self) -> Dict[str, float]:
        """Plain-dict form for JSON (with ``significant``)."""
        return dict(asdict(self), significant=self.significant)


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f'p must be in (0, 1), got {p}')
    if df < 1:
        raise ValueError(f'df must be >= 1, got {df}')
    from scipy.stats import t
    return float(t.ppf(p, df))


def spread(values: Sequence[float]) -> Spread:
    """Mean and sample standard deviation of ``values`` (at least one)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError('values must hold at least one number')
    n = len(vals)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return Spread(mean, std, n)


def paired_delta(base: Sequence[float], other: Sequence[float],
                 confidence: float = 0.95) -> PairedDelta:
    """Summary of ``other[i] - base[i]`` over seeds i with a two-sided t interval (n >= 2)."""
    if len(base) != len(other):
        raise ValueError(f'base and other must be paired (same length), got {len(base)} and '
                         f'{len(other)}')
    if len(base) < 2:
        raise ValueError(f'a confidence interval needs at least 2 paired seeds, got {len(base)}')
    if not 0.0 < confidence < 1.0:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    diffs = [float(o) - float(b) for b, o in zip(base, other)]
    s = spread(diffs)
    half = t_quantile(0.5 + confidence / 2, s.n - 1) * s.std / math.sqrt(s.n)
    return PairedDelta(mean=s.mean, std=s.std, n=s.n, ci_low=s.mean - half, ci_high=s.mean + half,
                       wins=sum(d > 0 for d in diffs), ties=sum(d == 0 for d in diffs),
                       losses=sum(d < 0 for d in diffs), confidence=confidence)


def _valid(v: Optional[float]) -> bool:
    # pycocotools reports -1 for a size range without ground truth
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v >= 0


def aggregate(runs: Mapping[str, Mapping[int, Mapping[str, float]]], metrics: Sequence[str],
              confidence: float = 0.95) -> Dict[str, object]:
    """Spread of every metric per method and paired deltas of each method against the first.

    ``runs[method][seed][metric]`` holds finished runs (methods in order, the first is the
    baseline). A delta uses the seeds both methods finished; it is None with fewer than two.
    """
    methods = list(runs)
    if not methods:
        raise ValueError('runs must hold at least one method')
    base_name = methods[0]
    out: Dict[str, object] = {'baseline': base_name, 'confidence': confidence,
                              'interval': 'two-sided Student t over paired per-seed differences',
                              'methods': {}}
    for name in methods:
        seeds = sorted(runs[name])
        entry: Dict[str, object] = {'seeds': seeds, 'metrics': {}, 'delta': {}}
        for m in metrics:
            vals = [runs[name][s][m] for s in seeds if _valid(runs[name][s].get(m))]
            entry['metrics'][m] = spread(vals).as_dict() if vals else None
            if name == base_name:
                continue
            common = [s for s in seeds if s in runs[base_name]
                      and _valid(runs[name][s].get(m)) and _valid(runs[base_name][s].get(m))]
            entry['delta'][m] = (paired_delta([runs[base_name][s][m] for s in common],
                                              [runs[name][s][m] for s in common],
                                              confidence).as_dict()
                                 if len(common) >= 2 else None)
            entry.setdefault('paired_seeds', common)
        out['methods'][name] = entry
    return out


def _pct(v: float) -> str:
    return f'{100 * v:.1f}'


def format_markdown(summary: Mapping[str, object], metrics: Sequence[str],
                    delta_metrics: Optional[Sequence[str]] = None) -> str:
    """Two markdown tables: mean ± std per method, and paired deltas with CI and wins."""
    methods: Mapping[str, Mapping] = summary['methods']  # type: ignore[assignment]
    delta_metrics = list(delta_metrics or metrics)
    conf = int(round(100 * float(summary['confidence'])))  # type: ignore[arg-type]
    lines = ['| method | seeds | ' + ' | '.join(metrics) + ' |',
             '|---|---|' + '---|' * len(metrics)]
    for name, e in methods.items():
        cells = []
        for m in metrics:
            s = e['metrics'][m]
            cells.append('n/a' if s is None else f'{_pct(s["mean"])} ± {_pct(s["std"])}')
        lines.append(f'| {name} | {len(e["seeds"])} | ' + ' | '.join(cells) + ' |')
    base = summary['baseline']
    rows = [(n, e) for n, e in methods.items() if n != base]
    if rows:
        lines += ['', f'Paired Δ against {base} (same seed), mean [{conf} % t-interval] '
                  '(seeds won / paired); **bold**: the interval excludes 0.', '',
                  '| method | ' + ' | '.join(f'Δ {m}' for m in delta_metrics) + ' |',
                  '|---|' + '---|' * len(delta_metrics)]
        for name, e in rows:
            cells = []
            for m in delta_metrics:
                d = e['delta'].get(m)
                if d is None:
                    cells.append('n/a')
                    continue
                text = (f'{100 * d["mean"]:+.1f} [{100 * d["ci_low"]:+.1f}, '
                        f'{100 * d["ci_high"]:+.1f}]')
                if d['significant']:
                    text = f'**{text}**'
                cells.append(f'{text} ({d["wins"]}/{d["n"]})')
            lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _points_with_interval(ax, x: float, vals: Sequence[float], conf: float, color: str) -> None:
    # seeds spread sideways a little so equal values stay visible; the mean and interval beside
    offs = [(k - (len(vals) - 1) / 2) * 0.06 for k in range(len(vals))]
    ax.scatter([x + o for o in offs], vals, s=18, color='tab:gray', alpha=0.8, zorder=2)
    s = spread(vals)
    half = (t_quantile(0.5 + conf / 2, s.n - 1) * s.std / math.sqrt(s.n)) if s.n > 1 else 0.0
    ax.errorbar([x + 0.25], [s.mean], yerr=[[half], [half]], fmt='o', color=color, capsize=4,
                zorder=3)


def plot_comparison(runs: Mapping[str, Mapping[int, Mapping[str, float]]],
                    summary: Mapping[str, object], path: str,
                    metrics: Sequence[str] = ('AP', 'AP_S', 'AP_tiny'), title: str = '',
                    metadata: Optional[Mapping[str, str]] = None) -> None:
    """PNG: per metric, every seed of every method with its mean and t-interval (top row), and
    every method's per-seed paired differences from the baseline with theirs (bottom row)."""
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt

    methods = list(runs)
    base = methods[0]
    conf = float(summary['confidence'])  # type: ignore[arg-type]
    others = methods[1:]
    fig, axes = plt.subplots(2 if others else 1, len(metrics), squeeze=False,
                             figsize=(4.2 * len(metrics), 7.2 if others else 3.8))
    for col, m in enumerate(metrics):
        ax = axes[0][col]
        for i, name in enumerate(methods):
            vals = [100 * runs[name][s][m] for s in sorted(runs[name])
                    if _valid(runs[name][s].get(m))]
            if vals:
                _points_with_interval(ax, i, vals, conf, 'tab:red')
        ax.set_xticks(range(len(methods)))
        ax.set_xlim(-0.5, len(methods) - 0.2)
        ax.set_xticklabels(methods, rotation=30, ha='right', fontsize=8)
        ax.set_title(m)
        ax.set_ylabel(f'{m} (%)')
        ax.grid(axis='y', alpha=0.3)
        if not others:
            continue
        ax = axes[1][col]
        for i, name in enumerate(others):
            diffs = [100 * (runs[name][s][m] - runs[base][s][m]) for s in sorted(runs[name])
                     if s in runs[base] and _valid(runs[name][s].get(m))
                     and _valid(runs[base][s].get(m))]
            if diffs:
                _points_with_interval(ax, i, diffs, conf, 'tab:blue')
        ax.axhline(0.0, color='black', lw=0.8)
        ax.set_xticks(range(len(others)))
        ax.set_xlim(-0.5, len(others) - 0.2)
        ax.set_xticklabels(others, rotation=30, ha='right', fontsize=8)
        ax.set_title(f'Δ {m} against {base} (same seed)')
        ax.set_ylabel(f'Δ {m} (points)')
        ax.grid(axis='y', alpha=0.3)
    pct = int(round(100 * conf))
    fig.suptitle(title or f'grey: one seed each; red / blue: mean with its {pct} % t-interval',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format='png', metadata=dict(metadata or {}))
    plt.close(fig)


def per_class_deltas(runs_pc: Mapping[str, Mapping[int, Mapping[str, Mapping[str, float]]]],
                     metric: str = 'AP_S', confidence: float = 0.95
                     ) -> Dict[str, Dict[str, Optional[Dict[str, float]]]]:
    """``{method: {class: paired delta of metric}}`` against the first method, per class."""
    methods = list(runs_pc)
    base = methods[0]
    out: Dict[str, Dict[str, Optional[Dict[str, float]]]] = {}
    for name in methods[1:]:
        classes: List[str] = []
        for s in runs_pc[base]:
            classes += [c for c in runs_pc[base][s] if c not in classes]
        out[name] = {}
        for c in classes:
            common = [s for s in sorted(runs_pc[name]) if s in runs_pc[base]
                      and _valid(runs_pc[name][s].get(c, {}).get(metric))
                      and _valid(runs_pc[base][s].get(c, {}).get(metric))]
            out[name][c] = (paired_delta([runs_pc[base][s][c][metric] for s in common],
                                         [runs_pc[name][s][c][metric] for s in common],
                                         confidence).as_dict()
                            if len(common) >= 2 else None)
    return out

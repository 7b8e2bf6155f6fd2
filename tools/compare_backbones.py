#!/usr/bin/env python
"""Does backbone B beat backbone A on small objects? Train every config with every seed, evaluate, and
report mean ± std per method and paired deltas against the first config with a confidence interval.

    python tools/compare_backbones.py CONFIG_A CONFIG_B [...] --seeds 0 1 2 3 4 \\
        --work-dir work_dirs/compare [--names R18 LIP-R18 ...] [--data-seed S] [--gpus N] \\
        [--cfg-options k=v ...] [--json PATH] [--plot PATH] [--per-class] [--report-only]

For each (config, seed) the tool runs ``tools/train.py`` with ``randomness.seed=SEED`` (the same seed
gives every config the same data order and augmentation), then ``tools/test.py`` on the last
checkpoint, and scores the detections with pycocotools: AP, AP50, AP75, AP_S, AP_M, AP_L and AP_tiny
(area <= 16²). In-training validation is switched off (``train_cfg.val_begin``): the tool evaluates
the final checkpoint itself. With ``--gpus N`` both steps go through tools/dist_train.sh and
tools/dist_test.sh.

Runs live in WORK_DIR/NAME/seedS/. A finished run is skipped, an interrupted one resumes from its last
checkpoint, a failed one is reported with its log and retried on the next invocation, so rerunning
the same command after a kill loses nothing. WORK_DIR/summary.{json,md,png} (or --json/--plot) are
rewritten after every run; ``--report-only`` writes them from the finished runs without training.
``{seed}``, ``{name}`` and ``{work_dir}`` in a ``--cfg-options`` value become each run's seed,
method name and the absolute work dir, so that every run can start from its own file (e.g. a
backbone pretrained with the same seed); each run's manifest records its options with seed and
name expanded and ``{work_dir}`` kept, so a checkout elsewhere (or another work dir) reuses them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

TOOL_TAG = 'lip-det tools/compare_backbones.py'
# What "the run is finished" means on disk: the scored metrics of its final checkpoint.
METRICS_FILE = 'metrics.json'
MANIFEST_FILE = 'run.json'
# What a finished run's record keeps (metrics.json, and each run in the summary JSON).
RECORD_KEYS = ('metrics', 'per_class', 'gt_sizes', 'num_detections', 'draw_size', 'draws',
               'train_seconds', 'test_seconds')
# What --cfg-options values may name, expanded per run by run_options.
PLACEHOLDERS = ('{seed}', '{name}', '{work_dir}')
# Val images per evaluation-noise draw: the size of the original synthetic val split.
DRAW_SIZE = 100


class CompareError(Exception):
    """A user error: printed as one line, exit status 2."""


@dataclass
class Run:
    """One (config, seed) training + evaluation and where it lives."""

    name: str
    config: str
    seed: int
    run_dir: str
    index: int = 0
    total: int = 0

    @property
    def label(self) -> str:
        """'[k/N] NAME seed S' for progress lines."""
        return f'[run {self.index}/{self.total}] {self.name} seed {self.seed}'

    def path(self, *parts: str) -> str:
        """A path inside the run's directory."""
        return osp.join(self.run_dir, *parts)


@dataclass
class Plan:
    """Everything the invocation decided before running: configs, seeds, overrides, outputs."""

    names: List[str]
    configs: List[str]
    seeds: List[int]
    work_dir: str
    cfg_options: List[str]
    gpus: int
    json_path: str
    md_path: str
    plot_path: str
    per_class: bool
    error_modes: Optional[float] = None
    data_root: Optional[str] = None
    data_args: List[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- arguments

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    doc = __doc__.split('\n\n')
    p = argparse.ArgumentParser(description=doc[0], epilog='\n\n'.join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('configs', nargs='+', metavar='CONFIG',
                   help='detector configs; the first is the baseline of the paired deltas')
    p.add_argument('--seeds', nargs='+', type=int, required=True,
                   help='training seeds (randomness.seed); at least 2 for an interval')
    p.add_argument('--work-dir', required=True, help='where runs and summaries are kept')
    p.add_argument('--names', nargs='+', help='one short name per config (default: file names)')
    p.add_argument('--data-seed', type=int,
                   help='generate (or reuse) the synthetic set drawn with this seed in its own '
                   'directory and point the configs at it')
    p.add_argument('--num-train', type=int, default=None,
                   help='with --data-seed: training images (generator default 400)')
    p.add_argument('--num-val', type=int, default=None,
                   help='with --data-seed: validation images (generator default 100)')
    p.add_argument('--data-dir', default=None,
                   help='with --data-seed: where the set goes (default data/synthetic_seed<S>'
                   '[_train<T>][_val<V>] in the repository)')
    p.add_argument('--gpus', type=int, default=0,
                   help='train and test with N processes via tools/dist_{train,test}.sh '
                   '(0: one process, no launcher)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='overrides passed to every train and test run; {seed}, {name} and '
                   '{work_dir} in a VALUE become the run\'s seed, method name and the absolute '
                   'work dir (e.g. a per-seed pretrained checkpoint)')
    p.add_argument('--json', dest='json_path', help='summary JSON (default WORK_DIR/summary.json)')
    p.add_argument('--plot', dest='plot_path', help='summary PNG (default WORK_DIR/summary.png)')
    p.add_argument('--md', dest='md_path', help='summary markdown (default: the JSON path with .md)')
    p.add_argument('--error-modes', type=float, nargs='?', const=0.5, default=None,
                   metavar='SCORE_THR',
                   help='also break every run\'s objects down into found / wrong class / poor box '
                   '/ missed per size range, at detections scoring >= SCORE_THR (default 0.5)')
    p.add_argument('--per-class', action='store_true',
                   help='add the per-class paired AP_S deltas to the markdown')
    p.add_argument('--confidence', type=float, default=0.95, help='interval level (default 0.95)')
    p.add_argument('--report-only', action='store_true',
                   help='run nothing: write the summaries from the runs already finished')
    return p.parse_args(argv)


def _default_name(config: str) -> str:
    base = osp.splitext(osp.basename(config))[0]
    for prefix in ('faster_rcnn_', 'faster-rcnn_'):
        if base.startswith(prefix):
            base = base[len(prefix):]
    return base


def make_plan(args: argparse.Namespace) -> Plan:
    """Validate the arguments (CompareError naming the argument) and fix every path."""
    configs = []
    for c in args.configs:
        path = osp.abspath(c)
        if not osp.isfile(path):
            raise CompareError(f'CONFIG {c!r}: no such file (give a config path, e.g. '
                               'configs/synthetic/faster_rcnn_r18_fpn_synthetic.py)')
        configs.append(path)
    if len(set(configs)) != len(configs):
        dup = sorted({c for c in args.configs if configs.count(osp.abspath(c)) > 1})
        raise CompareError(f'CONFIG: {dup} given more than once; each config is one method')
    names = list(args.names) if args.names else [_default_name(c) for c in configs]
    if len(names) != len(configs):
        raise CompareError(f'--names: give one name per config ({len(configs)}), got {len(names)}')
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CompareError(f'--names: duplicate name(s) {dup}; each method needs its own name '
                           '(pass --names)')
    for n in names:
        if not n or n in ('.', '..') or any(ch in n for ch in '/\\\0') or n.startswith('summary'):
            raise CompareError(f'--names: {n!r} cannot be a directory name under --work-dir '
                               '(no "/", "\\", "." or "..", not starting with "summary")')
    if len(configs) < 2:
        raise CompareError('CONFIG: give at least 2 configs (a baseline and one to compare)')
    if len(set(args.seeds)) != len(args.seeds):
        raise CompareError(f'--seeds: duplicate seeds in {args.seeds}')
    if len(args.seeds) < 2:
        raise CompareError(f'--seeds: a confidence interval needs at least 2 seeds, got '
                           f'{args.seeds}')
    if any(s < 0 for s in args.seeds):
        raise CompareError(f'--seeds: seeds must be >= 0, got {args.seeds}')
    if args.gpus < 0:
        raise CompareError(f'--gpus must be >= 0 (0: no launcher), got {args.gpus}')
    if not 0.5 <= args.confidence < 1:
        raise CompareError(f'--confidence must be in [0.5, 1), got {args.confidence}')
    for opt in args.cfg_options:
        if '=' not in opt or opt.startswith('='):
            raise CompareError(f'--cfg-options: {opt!r} is not KEY=VALUE')
        if opt.split('=', 1)[0] in ('randomness.seed', 'work_dir'):
            raise CompareError(f'--cfg-options: {opt.split("=", 1)[0]} is set by the tool '
                               '(use --seeds / --work-dir)')
        if any(ph in opt.split('=', 1)[0] for ph in PLACEHOLDERS):
            raise CompareError(f'--cfg-options: {opt!r}: {", ".join(PLACEHOLDERS)} are '
                               'expanded in values only, not in keys')
    if args.data_seed is None and (args.num_train is not None or args.num_val is not None
                                   or args.data_dir is not None):
        raise CompareError('--num-train, --num-val and --data-dir need --data-seed')
    if args.data_seed is not None and args.data_seed < 0:
        raise CompareError(f'--data-seed must be >= 0, got {args.data_seed}')
    for flag, v in (('--num-train', args.num_train), ('--num-val', args.num_val)):
        if v is not None and v < 1:
            raise CompareError(f'{flag} must be >= 1, got {v}')
    work_dir = osp.abspath(args.work_dir)
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        raise CompareError(f'--work-dir {args.work_dir!r} exists and is not a directory')
    json_path = osp.abspath(args.json_path or osp.join(work_dir, 'summary.json'))
    md_path = osp.abspath(args.md_path or osp.splitext(json_path)[0] + '.md')
    plot_path = osp.abspath(args.plot_path or osp.join(work_dir, 'summary.png'))
    for flag, path, ext in (('--json', json_path, '.json'), ('--md', md_path, '.md'),
                            ('--plot', plot_path, '.png')):
        if not path.endswith(ext):
            raise CompareError(f'{flag} must end with {ext}, got {path!r}')
    plan = Plan(names=names, configs=configs, seeds=list(args.seeds), work_dir=work_dir,
                cfg_options=list(args.cfg_options), gpus=args.gpus, json_path=json_path,
                md_path=md_path, plot_path=plot_path, per_class=args.per_class,
                error_modes=args.error_modes)
    if args.error_modes is not None and not 0 <= args.error_modes <= 1:
        raise CompareError(f'--error-modes: the score threshold must be in [0, 1], got '
                           f'{args.error_modes}')
    if args.data_seed is not None:
        suffix = ''.join(f'_{k}{v}' for k, v in (('train', args.num_train), ('val', args.num_val))
                         if v is not None)
        plan.data_root = osp.abspath(args.data_dir or osp.join(
            REPO, 'data', f'synthetic_seed{args.data_seed}{suffix}'))
        plan.data_args = ['--seed', str(args.data_seed)]
        if args.num_train is not None:
            plan.data_args += ['--num-train', str(args.num_train)]
        if args.num_val is not None:
            plan.data_args += ['--num-val', str(args.num_val)]
    return plan


# ----------------------------------------------------------------------------- config handling

def data_overrides(data_root: str) -> List[str]:
    """cfg-options that point the synthetic configs' dataloaders and evaluators at data_root."""
    root = data_root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val.json'
    return [f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def run_options(options: Sequence[str], name: str, seed: int,
                work_dir: Optional[str] = None) -> List[str]:
    """One run's --cfg-options: placeholders in values become the run's name, seed and (when
    given) the work dir; without ``work_dir``, ``{work_dir}`` stays, as the manifest records it."""
    out = []
    for opt in options:
        key, value = opt.split('=', 1)
        value = value.replace('{seed}', str(seed)).replace('{name}', name)
        out.append(key + '=' + (value.replace('{work_dir}', work_dir) if work_dir else value))
    return out


def _parse_options(options: Sequence[str]) -> dict:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *options]).o if options else {}


def describe_config(config: str, options: Sequence[str], data_options: Sequence[str] = (),
                    work_dir: Optional[str] = None) -> dict:
    """Hash of the merged config, and the ground-truth file its test evaluator scores against.

    The hash leaves ``data_options`` out: they hold the data set's absolute path, which the run
    manifest records (relative to the repository) on its own, so that a checkout elsewhere
    reuses the runs. ``options`` are hashed as given, ``{work_dir}`` unexpanded (run_options
    without a work dir); in the ground-truth path it becomes ``work_dir``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(_parse_options(options))
    digest = hashlib.sha256(cfg.pretty_text.encode()).hexdigest()
    if data_options:
        cfg.merge_from_dict(_parse_options(data_options))
    evaluator = cfg.get('test_evaluator')
    if isinstance(evaluator, (list, tuple)):
        evaluator = next((e for e in evaluator if 'ann_file' in e), None)
    ann_file = evaluator.get('ann_file') if evaluator else None
    if not ann_file:
        raise CompareError(f'CONFIG {config!r}: its test_evaluator has no ann_file (a COCO '
                           'ground truth is needed to score the runs)')
    if work_dir:
        ann_file = ann_file.replace('{work_dir}', work_dir)
    return {'config_sha256': digest,
            'ann_file': ann_file if osp.isabs(ann_file) else osp.join(REPO, ann_file)}


def check_data_config(config: str) -> None:
    """--data-seed rewrites dataset.data_root: refuse configs whose datasets are wrapped."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    for key in ('train_dataloader', 'test_dataloader'):
        ds = cfg.get(key, {}).get('dataset', {})
        if 'data_root' not in ds or 'dataset' in ds:
            raise CompareError(f'--data-seed: CONFIG {config!r} has no {key}.dataset.data_root '
                               '(it needs a config that loads the synthetic set directly, like '
                               'configs/synthetic/*)')


# ----------------------------------------------------------------------------- the runner

def _env() -> dict:
    env = dict(os.environ)
    # Sleeping OpenMP waits: with spinning waits, 2-thread CPU training slows several-fold
    # whenever anything else shares the cores.
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    return env


class SubprocessRunner:
    """Trains and tests through the repository's tools, output appended to a log file."""

    def __init__(self, gpus: int = 0, python: str = sys.executable) -> None:
        self.gpus = gpus
        self.python = python

    def _run(self, cmd: List[str], log_path: str) -> int:
        with open(log_path, 'a') as log:
            log.write(f'\n$ {" ".join(shlex.quote(c) for c in cmd)}\n')
            log.flush()
            return subprocess.call(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=_env())

    def train(self, config: str, work_dir: str, options: List[str], resume: bool,
              log_path: str) -> int:
        """Exit status of tools/train.py (or dist_train.sh) on config."""
        extra = ['--work-dir', work_dir] + (['--resume'] if resume else [])
        extra += ['--cfg-options', *options] if options else []
        if self.gpus:
            cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, str(self.gpus)]
        else:
            cmd = [self.python, osp.join(REPO, 'tools', 'train.py'), config]
        return self._run(cmd + extra, log_path)

    def test(self, config: str, checkpoint: str, work_dir: str, out_pkl: str,
             options: List[str], log_path: str) -> int:
        """Exit status of tools/test.py (or dist_test.sh) on checkpoint, dumping detections."""
        extra = ['--work-dir', work_dir, '--out', out_pkl]
        extra += ['--cfg-options', *options] if options else []
        if self.gpus:
            cmd = ['bash', osp.join(REPO, 'tools', 'dist_test.sh'), config, checkpoint,
                   str(self.gpus)]
        else:
            cmd = [self.python, osp.join(REPO, 'tools', 'test.py'), config, checkpoint]
        return self._run(cmd + extra, log_path)

    def make_data(self, out: str, data_args: List[str], log_path: str) -> int:
        """Exit status of tools/make_synthetic_coco.py (reuses a set with the same parameters)."""
        cmd = [self.python, osp.join(REPO, 'tools', 'make_synthetic_coco.py'), '--out', out,
               '--quiet', *data_args]
        return self._run(cmd, log_path)


# ----------------------------------------------------------------------------- one run

def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, data: object) -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write('\n')
    os.replace(tmp, path)


def check_manifest(run: Run, manifest: dict) -> None:
    """Create the run's manifest, or refuse a run directory that holds another experiment."""
    path = run.path(MANIFEST_FILE)
    old = _read_json(path)
    if old is None:
        if osp.exists(path):
            raise CompareError(f'{path} is unreadable: move {run.run_dir} away or pick another '
                               '--work-dir')
        os.makedirs(run.run_dir, exist_ok=True)
        _write_json(path, manifest)
        return
    keys = ('config', 'config_sha256', 'seed', 'options', 'data_root', 'data_args')
    changed = [k for k in keys if old.get(k) != manifest.get(k)]
    if changed:
        raise CompareError(
            f'{run.run_dir} holds a run of another experiment ({", ".join(changed)} differ: '
            f'was {[old.get(k) for k in changed]}); nothing was changed. Use another --work-dir '
            'or another --names for this config')


def execute_run(run: Run, runner: SubprocessRunner, train_options: List[str],
                test_options: List[str], ann_file: str) -> dict:
    """Train (resuming), test and score one run; returns its metrics record (raises on failure)."""
    train_dir = run.path('train')
    log = run.path('run.log')
    done = _read_json(run.path('train_done.json'))
    t0 = time.time()
    if done is None or not osp.isfile(done.get('checkpoint', '')):
        resume = osp.isfile(osp.join(train_dir, 'last_checkpoint'))
        print(f'{run.label}: {"resuming" if resume else "training"} (log: {log})', flush=True)
        rc = runner.train(run.config, train_dir, train_options, resume, log)
        if rc != 0:
            raise RunFailed(run, 'training', rc, log)
        try:
            with open(osp.join(train_dir, 'last_checkpoint')) as f:
                ckpt = f.read().strip()
        except OSError:
            ckpt = ''
        if not osp.isfile(ckpt):
            raise RunFailed(run, 'training', rc, log, 'it left no last_checkpoint')
        _write_json(run.path('train_done.json'), {'checkpoint': ckpt,
                                                  'seconds': round(time.time() - t0, 1)})
        done = _read_json(run.path('train_done.json'))
    t1 = time.time()
    print(f'{run.label}: testing {osp.basename(done["checkpoint"])}', flush=True)
    out_pkl = run.path('results.pkl')
    rc = runner.test(run.config, done['checkpoint'], run.path('test'), out_pkl, test_options, log)
    if rc != 0 or not osp.isfile(out_pkl):
        raise RunFailed(run, 'testing', rc, log, '' if rc else 'it wrote no results.pkl')
    try:
        record = score_run(ann_file, out_pkl)
    except Exception as exc:  # noqa: BLE001 (any scoring error fails this run only)
        raise RunFailed(run, 'scoring', 1, log, str(exc)) from exc
    record.update({'name': run.name, 'seed': run.seed, 'checkpoint': done['checkpoint'],
                   'train_seconds': done.get('seconds'),
                   'test_seconds': round(time.time() - t1, 1)})
    _write_json(run.path(METRICS_FILE), record)
    failed = run.path('failed.json')
    if osp.exists(failed):
        os.remove(failed)
    return record


def score_run(ann_file: str, results: str, draw_size: int = DRAW_SIZE) -> dict:
    """COCO metrics (with AP_tiny and per class) of a results file, and of disjoint val draws.

    The draws split the val images (in id order) into consecutive groups of ``draw_size``: how
    much a metric moves between two draws of one model is the evaluation noise of a val split of
    that size, to set beside the noise between training seeds.
    """
    from lip_det.evaluation import (evaluate_detections, gt_size_counts, load_detections,
                                    load_ground_truth)
    gt = load_ground_truth(ann_file)
    found, dets = load_detections(results, gt)
    metrics, per_class, _ = evaluate_detections(gt, dets, per_class=True)
    ids = sorted(gt.getImgIds())
    draws = []
    if len(ids) >= 2 * draw_size:
        for k in range(len(ids) // draw_size):
            sub = ids[k * draw_size:(k + 1) * draw_size]
            draws.append(evaluate_detections(gt, dets, img_ids=sub)[0])
    return {'metrics': metrics, 'per_class': per_class, 'gt_sizes': gt_size_counts(gt),
            'num_detections': len(dets), 'draw_size': draw_size, 'draws': draws}


class RunFailed(Exception):
    """A training, testing or scoring step of one run failed."""

    def __init__(self, run: Run, step: str, rc: int, log: str, why: str = '') -> None:
        self.run, self.step, self.rc, self.log = run, step, rc, log
        super().__init__(f'{run.label}: {step} failed (exit {rc}{"; " + why if why else ""}); '
                         f'log: {log}')


# ----------------------------------------------------------------------------- summaries

def _is_ours(path: str) -> bool:
    """Whether an existing output file was written by this tool (else it must not be replaced)."""
    if path.endswith('.json'):
        data = _read_json(path)
        return isinstance(data, dict) and data.get('tool') == TOOL_TAG
    if path.endswith('.md'):
        try:
            with open(path) as f:
                return TOOL_TAG in f.readline()
        except (OSError, UnicodeDecodeError):
            return False
    try:
        from PIL import Image
        with Image.open(path) as im:
            return TOOL_TAG in str(im.info.get('Software', ''))
    except Exception:  # noqa: BLE001 (an unreadable file is not ours)
        return False


def check_outputs(plan: Plan) -> None:
    """Refuse to start if a summary path holds a file this tool did not write."""
    for flag, path in (('--json', plan.json_path), ('--md', plan.md_path),
                       ('--plot', plan.plot_path)):
        if osp.isdir(path):
            raise CompareError(f'{flag} {path!r} is a directory')
        if osp.exists(path) and not _is_ours(path):
            raise CompareError(f'{flag} {path!r} exists and was not written by this tool; '
                               'refusing to overwrite it (choose another path)')


def restore_from_summary(plan: Plan, run: Run, manifest: dict) -> bool:
    """Recreate a finished run that the (committed) summary JSON holds but the work dir lacks.

    The summary keeps every run's manifest and scored record, so a fresh checkout of the
    repository resumes a sweep from its committed results instead of training them again.
    """
    if osp.exists(run.path(MANIFEST_FILE)) or not osp.isfile(plan.json_path):
        return False
    summary = _read_json(plan.json_path)
    if not isinstance(summary, dict) or summary.get('tool') != TOOL_TAG:
        return False
    entry = (summary.get('runs') or {}).get(run.name, {}).get(str(run.seed))
    if not isinstance(entry, dict) or entry.get('manifest') != manifest:
        return False
    record = {k: entry.get(k) for k in RECORD_KEYS}
    record.update(name=run.name, seed=run.seed, restored_from=plan.json_path)
    os.makedirs(run.run_dir, exist_ok=True)
    _write_json(run.path(MANIFEST_FILE), manifest)
    _write_json(run.path(METRICS_FILE), record)
    em = summary.get('error_modes') or {}
    cached = (em.get('per_run') or {}).get(run.name, {}).get(str(run.seed))
    if isinstance(cached, dict) and isinstance(em.get('score_thr'), (int, float)):
        _write_json(run.path(f'error_modes_{em["score_thr"]:g}.json'), cached)
    return True


def collect(plan: Plan) -> Dict[str, Dict[int, dict]]:
    """Finished runs' records, {name: {seed: record}}, in the plan's order."""
    out: Dict[str, Dict[int, dict]] = {}
    for name in plan.names:
        out[name] = {}
        for seed in plan.seeds:
            rec = _read_json(osp.join(plan.work_dir, name, f'seed{seed}', METRICS_FILE))
            if rec is not None:
                out[name][seed] = rec
    return out


def eval_noise(records: Dict[str, Dict[int, dict]],
               metrics: Sequence[str] = ('AP', 'AP_S', 'AP_tiny')) -> Optional[dict]:
    """Std of each metric between disjoint val draws of one model, averaged over all runs."""
    import math

    from lip_det.evaluation.seed_stats import spread
    stds: Dict[str, List[float]] = {m: [] for m in metrics}
    n_draws, size = 0, DRAW_SIZE
    for recs in records.values():
        for r in recs.values():
            draws = r.get('draws') or []
            if len(draws) < 2:
                continue
            n_draws, size = len(draws), r.get('draw_size', DRAW_SIZE)
            for m in metrics:
                vals = [d[m] for d in draws if d.get(m, -1) >= 0]
                if len(vals) >= 2:
                    stds[m].append(spread(vals).std)
    if not n_draws:
        return None
    out = {'draw_size': size, 'draws_per_run': n_draws, 'metrics': {}}
    for m, v in stds.items():
        if v:
            draw_std = math.fsum(v) / len(v)
            # the full val set averages n_draws such draws
            out['metrics'][m] = {'draw_std': draw_std, 'runs': len(v),
                                 'full_val_std': draw_std / math.sqrt(n_draws)}
    return out


def _noise_lines(noise: Optional[dict], agg: dict) -> List[str]:
    if not noise or 'AP_S' not in noise['metrics']:
        return []
    seed_std = [e['metrics']['AP_S']['std'] for e in agg['methods'].values()
                if e['metrics'].get('AP_S') and e['metrics']['AP_S']['n'] >= 2]
    n = noise['metrics']['AP_S']
    text = (f'Evaluation noise: AP_S of one model moves by {100 * n["draw_std"]:.1f} (std) '
            f'between disjoint {noise["draw_size"]}-image val draws, so the '
            f'{noise["draw_size"] * noise["draws_per_run"]}-image val set adds about '
            f'{100 * n["full_val_std"]:.1f} to a run\'s AP_S')
    if seed_std:
        text += (f'; between training seeds AP_S moves by {100 * sum(seed_std) / len(seed_std):.1f}'
                 ' (std, mean over methods)')
    return ['', text + '.']


def run_error_modes(plan: Plan, name: str, seed: int, ann_file: str) -> Optional[dict]:
    """A finished run's error modes at the plan's threshold (cached beside its results)."""
    run_dir = osp.join(plan.work_dir, name, f'seed{seed}')
    cache = osp.join(run_dir, f'error_modes_{plan.error_modes:g}.json')
    cached = _read_json(cache)
    if cached is not None:
        return cached
    results = osp.join(run_dir, 'results.pkl')
    if not osp.isfile(results):
        return None
    from lip_det.evaluation import load_detections, load_ground_truth
    from lip_det.evaluation.error_modes import error_modes
    gt = load_ground_truth(ann_file)
    out = error_modes(gt, load_detections(results, gt)[1], plan.error_modes)
    _write_json(cache, out)
    return out


ERROR_KEYS = tuple(f'{m}_{r}' for r in ('tiny', 'small') for m in
                   ('found', 'wrong_class', 'poor_box', 'missed'))


def error_mode_summary(plan: Plan, records: Dict[str, Dict[int, dict]],
                       confidence: float) -> dict:
    """Mean error modes per method and their paired deltas against the baseline."""
    from lip_det.evaluation.seed_stats import aggregate
    ann = describe_config(plan.configs[0],
                          run_options(plan.cfg_options, plan.names[0], plan.seeds[0]),
                          data_overrides(plan.data_root) if plan.data_root else [],
                          plan.work_dir)['ann_file']
    runs: Dict[str, Dict[int, dict]] = {}
    full: Dict[str, Dict[str, dict]] = {}
    for name, recs in records.items():
        runs[name], full[name] = {}, {}
        for seed in recs:
            em = run_error_modes(plan, name, seed, ann)
            if em is not None:
                full[name][str(seed)] = em
                runs[name][seed] = {f'{m}_{r}': em[r][m] for r in ('tiny', 'small')
                                    for m in ('found', 'wrong_class', 'poor_box', 'missed')}
    # 'per_run' keeps every size range, and lets a checkout without the runs' results.pkl
    # (restored from this JSON) summarise them again
    return {'score_thr': plan.error_modes, 'runs': runs, 'per_run': full,
            'aggregate': aggregate(runs, ERROR_KEYS, confidence)}


def _error_mode_lines(em: dict) -> List[str]:
    agg = em['aggregate']
    lines = ['', f'Where small objects go (detections scoring ≥ {em["score_thr"]:g}): % of the '
             'small (tiny) objects found, found only as another class, found with IoU < 0.5, '
             'or missed; mean over seeds, and the paired Δ of "wrong class" against '
             f'{agg["baseline"]}.', '',
             '| method | found | wrong class | poor box | missed | Δ wrong class |',
             '|---|---|---|---|---|---|']
    for name, e in agg['methods'].items():
        cells = []
        for m in ('found', 'wrong_class', 'poor_box', 'missed'):
            s, t = e['metrics'][f'{m}_small'], e['metrics'][f'{m}_tiny']
            cells.append('n/a' if s is None else f'{100 * s["mean"]:.1f} ({100 * t["mean"]:.1f})')
        d = e['delta'].get('wrong_class_small') if e['delta'] else None
        cells.append('—' if name == agg['baseline'] else 'n/a' if d is None else
                     f'{100 * d["mean"]:+.1f} [{100 * d["ci_low"]:+.1f}, {100 * d["ci_high"]:+.1f}]')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return lines


def write_summaries(plan: Plan, command: str, confidence: float,
                    failures: Sequence[str] = ()) -> Optional[dict]:
    """Aggregate the finished runs into the JSON, markdown and PNG summaries."""
    from lip_det.evaluation import METRICS
    from lip_det.evaluation.seed_stats import (aggregate, format_markdown, per_class_deltas,
                                               plot_comparison)
    records = collect(plan)
    runs = {n: {s: r['metrics'] for s, r in recs.items()} for n, recs in records.items()}
    if not any(runs.values()):
        return None
    agg = aggregate(runs, METRICS, confidence)
    pc = per_class_deltas({n: {s: r['per_class'] for s, r in recs.items()}
                           for n, recs in records.items()}, 'AP_S', confidence) \
        if runs[plan.names[0]] else {}
    sizes = next(r['gt_sizes'] for recs in records.values() for r in recs.values())
    summary = {
        'tool': TOOL_TAG, 'command': command, 'updated': time.strftime('%Y-%m-%d %H:%M:%S'),
        'configs': {n: osp.relpath(c, REPO) for n, c in zip(plan.names, plan.configs)},
        'seeds': plan.seeds, 'cfg_options': plan.cfg_options,
        'data_root': osp.relpath(plan.data_root, REPO) if plan.data_root else None,
        'gt_sizes': sizes, 'metrics': list(METRICS),
        'finished': sum(len(v) for v in runs.values()),
        'planned': len(plan.names) * len(plan.seeds), 'failures': list(failures),
        'runs': {n: {str(s): dict({k: r.get(k) for k in RECORD_KEYS},
                                  manifest=_read_json(osp.join(plan.work_dir, n, f'seed{s}',
                                                               MANIFEST_FILE)))
                     for s, r in sorted(recs.items())} for n, recs in records.items()},
        'aggregate': agg, 'per_class_AP_S_delta': pc, 'eval_noise': eval_noise(records)}
    for path in (plan.json_path, plan.md_path, plan.plot_path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    _write_json(plan.json_path, summary)
    md = [f'<!-- written by {TOOL_TAG}; do not edit: rerun the command below -->',
          f'`{command}`', '',
          f'{summary["finished"]} of {summary["planned"]} runs finished; val set: '
          f'{sizes["small"]} small ({sizes["tiny"]} tiny, area ≤ 16²), {sizes["medium"]} medium, '
          f'{sizes["large"]} large objects. Metrics in %, mean ± std over seeds.', '',
          format_markdown(agg, METRICS, ['AP', 'AP_S', 'AP_tiny', 'AP_M', 'AP_L'])]
    md += _noise_lines(summary['eval_noise'], agg)
    if plan.error_modes is not None:
        em = error_mode_summary(plan, records, confidence)
        summary['error_modes'] = em
        _write_json(plan.json_path, summary)
        md += _error_mode_lines(em)
    if plan.per_class and pc:
        md += ['', 'Per-class paired Δ AP_S against the baseline, mean [interval] (won/paired):', '',
               '| method | ' + ' | '.join(next(iter(pc.values()))) + ' |',
               '|---|' + '---|' * len(next(iter(pc.values())))]
        for name, classes in pc.items():
            md.append(f'| {name} | ' + ' | '.join(
                'n/a' if d is None else f'{100 * d["mean"]:+.1f} [{100 * d["ci_low"]:+.1f}, '
                f'{100 * d["ci_high"]:+.1f}] ({d["wins"]}/{d["n"]})' for d in classes.values())
                + ' |')
    tmp = f'{plan.md_path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write('\n'.join(md) + '\n')
    os.replace(tmp, plan.md_path)
    tmp = f'{plan.plot_path[:-4]}.tmp-{os.getpid()}.png'
    plot_comparison(runs, agg, tmp, metrics=('AP', 'AP_S', 'AP_tiny'),
                    metadata={'Software': TOOL_TAG})
    os.replace(tmp, plan.plot_path)
    return summary


# ----------------------------------------------------------------------------- main

def _fmt_minutes(seconds: float) -> str:
    return f'{seconds / 60:.0f} min' if seconds >= 60 else f'{seconds:.0f} s'


def run_all(plan: Plan, runner: SubprocessRunner, command: str, confidence: float,
            report_only: bool = False) -> int:
    """Run every unfinished (config, seed), seed-major so that pairs complete early."""
    check_outputs(plan)
    runs = []
    for seed in plan.seeds:
        for name, config in zip(plan.names, plan.configs):
            runs.append(Run(name, config, seed, osp.join(plan.work_dir, name, f'seed{seed}')))
    # What runs with (options) and what the manifest records and hashes (recorded: {work_dir}
    # kept, so that the runs do not depend on where the work dir is).
    options = {(r.name, r.seed): run_options(plan.cfg_options, r.name, r.seed, plan.work_dir)
               for r in runs}
    recorded = {(r.name, r.seed): run_options(plan.cfg_options, r.name, r.seed) for r in runs}
    data_opts = data_overrides(plan.data_root) if plan.data_root else []
    # Per run; runs whose config and expanded options are equal share one description.
    by_config: Dict[tuple, dict] = {}
    described: Dict[tuple, dict] = {}
    for r in runs:
        key = (r.config, tuple(recorded[r.name, r.seed]))
        if key not in by_config:
            by_config[key] = describe_config(r.config, key[1], data_opts, plan.work_dir)
        described[r.name, r.seed] = by_config[key]
    restored = 0
    for i, r in enumerate(runs):
        r.index, r.total = i + 1, len(runs)
        manifest = {'tool': TOOL_TAG, 'config': osp.relpath(r.config, REPO),
                    'config_sha256': described[r.name, r.seed]['config_sha256'],
                    'seed': r.seed, 'options': recorded[r.name, r.seed],
                    'data_root': plan.data_root and osp.relpath(plan.data_root, REPO),
                    'data_args': plan.data_args}
        restored += restore_from_summary(plan, r, manifest)
        check_manifest(r, manifest)
    if restored:
        print(f'compare_backbones: {restored} finished run(s) restored from {plan.json_path}',
              flush=True)
    todo = [r for r in runs if not osp.isfile(r.path(METRICS_FILE))]
    print(f'compare_backbones: {len(runs)} runs ({len(plan.names)} configs x {len(plan.seeds)} '
          f'seeds), {len(runs) - len(todo)} finished, {len(todo)} to go; work dir {plan.work_dir}',
          flush=True)
    failures: List[str] = []
    if not report_only and todo:
        if plan.data_root:
            os.makedirs(plan.work_dir, exist_ok=True)
            data_log = osp.join(plan.work_dir, 'data.log')
            rc = runner.make_data(plan.data_root, plan.data_args, data_log)
            if rc != 0:
                raise CompareError(f'--data-seed: generating the synthetic set in '
                                   f'{plan.data_root} failed (exit {rc}); see {data_log}')
        # Durations of earlier finished runs seed the ETA until this invocation finishes one.
        durations = [float(rec['train_seconds'] or 0) + float(rec['test_seconds'] or 0)
                     for recs in collect(plan).values() for rec in recs.values()]
        for k, r in enumerate(todo):
            t0 = time.time()
            base_opts = [f'randomness.seed={r.seed}', *options[r.name, r.seed]]
            if plan.data_root:
                base_opts += data_overrides(plan.data_root)
            try:
                rec = execute_run(r, runner, base_opts + ['train_cfg.val_begin=1000000000'],
                                  base_opts, described[r.name, r.seed]['ann_file'])
            except RunFailed as exc:
                failures.append(str(exc))
                _write_json(r.path('failed.json'), {'step': exc.step, 'exit': exc.rc,
                                                    'log': exc.log, 'time': time.time()})
                print(f'{exc} -- continuing with the other runs', file=sys.stderr, flush=True)
                continue
            durations.append(time.time() - t0)
            left = len(todo) - k - 1
            m = rec['metrics']
            eta = (f'; {left} to go, ETA {_fmt_minutes(left * sum(durations) / len(durations))}'
                   if left else '')
            print(f'{r.label}: done in {_fmt_minutes(time.time() - t0)}: AP {100 * m["AP"]:.1f} '
                  f'AP_S {100 * m["AP_S"]:.1f} AP_tiny {100 * m["AP_tiny"]:.1f}{eta}', flush=True)
            write_summaries(plan, command, confidence, failures)
    summary = write_summaries(plan, command, confidence, failures)
    if summary is None:
        print('compare_backbones: no finished run yet, no summary written', flush=True)
    else:
        with open(plan.md_path) as f:
            print('\n' + ''.join(f.readlines()[1:]), flush=True)
        print(f'summaries: {plan.json_path}, {plan.md_path}, {plan.plot_path}', flush=True)
    if failures:
        print(f'compare_backbones: {len(failures)} run(s) failed:\n  ' + '\n  '.join(failures),
              file=sys.stderr, flush=True)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None, runner: Optional[SubprocessRunner] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    # --report-only rewrites the summaries of the same runs: record the command that makes them
    command = 'python tools/compare_backbones.py ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv) if a != '--report-only')
    try:
        plan = make_plan(args)
        if plan.data_root:
            for c in plan.configs:
                check_data_config(c)
        return run_all(plan, runner or SubprocessRunner(args.gpus), command, args.confidence,
                       args.report_only)
    except CompareError as exc:
        print(f'compare_backbones: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())

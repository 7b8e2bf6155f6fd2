"""tools/compare_backbones.py with a stubbed runner: skip/resume, failures, summaries, bad arguments."""
from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
import torch

from .tool_loader import load_tool

tool = load_tool('compare_backbones')

CATS = [{'id': 1, 'name': 'disc'}, {'id': 2, 'name': 'ring'}]


@pytest.fixture
def setup(tmp_path):
    """A GT file, two tiny standalone configs pointing at it, and a work dir."""
    images, anns = [], []
    for img in range(1, 7):
        images.append({'id': img, 'file_name': f'{img}.png', 'width': 300, 'height': 300})
        for k, side in enumerate((10, 20, 28, 60, 120)):
            anns.append({'id': len(anns) + 1, 'image_id': img, 'category_id': 1 + k % 2,
                         'bbox': [5 + 2 * k, 5 + 55 * k, side, side], 'area': side * side,
                         'iscrowd': 0})
    gt = tmp_path / 'gt.json'
    gt.write_text(json.dumps({'images': images, 'annotations': anns, 'categories': CATS}))
    configs = []
    for name in ('base', 'pooled'):
        c = tmp_path / f'{name}.py'
        c.write_text(f"model = dict(type='{name}')\n"
                     f"test_evaluator = dict(type='CocoMetric', ann_file='{gt}')\n")
        configs.append(str(c))
    return {'gt': str(gt), 'anns': anns, 'configs': configs, 'work': str(tmp_path / 'work'),
            'tmp': tmp_path}


class FakeRunner:
    """Writes what train.py/test.py would: a checkpoint and last_checkpoint, then results.pkl.

    The detections drop small objects by a rule of (config, seed), so every run has known
    metrics; ``fail`` makes the named (config stem, seed, step) exit non-zero.
    """

    def __init__(self, anns, fail=(), interrupt=()):
        self.anns, self.fail, self.interrupt = anns, set(fail), set(interrupt)
        self.calls = []

    @staticmethod
    def _key(config, work_dir):
        seed = int(os.path.basename(os.path.dirname(work_dir))[len('seed'):])
        return os.path.splitext(os.path.basename(config))[0], seed

    def train(self, config, work_dir, options, resume, log_path):
        stem, seed = self._key(config, work_dir)
        self.calls.append(('train', stem, seed, resume, tuple(options)))
        assert f'randomness.seed={seed}' in options and 'train_cfg.val_begin=1000000000' in options
        os.makedirs(work_dir, exist_ok=True)
        with open(log_path, 'a') as f:
            f.write('training\n')
        if (stem, seed, 'train') in self.fail:
            return 1
        ckpt = os.path.join(work_dir, 'epoch_1.pth')
        torch.save({'state_dict': {}}, ckpt)
        with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(ckpt)
        if (stem, seed) in self.interrupt:  # killed after the first checkpoint
            self.interrupt.discard((stem, seed))
            return -9
        return 0

    def test(self, config, checkpoint, work_dir, out_pkl, options, log_path):
        stem, seed = self._key(config, os.path.dirname(out_pkl) + '/x')
        self.calls.append(('test', stem, seed))
        assert 'train_cfg.val_begin=1000000000' not in options
        if (stem, seed, 'test') in self.fail:
            return 3
        # base misses the small objects of images seed+1 and seed+2; pooled only of seed+1
        missed = {seed + 1, seed + 2} if stem == 'base' else {seed + 1}
        samples = []
        for img in range(1, 7):
            mine = [a for a in self.anns if a['image_id'] == img
                    and not (img in missed and a['area'] <= 32 ** 2)]
            samples.append({'img_id': img, 'pred_instances': {
                'bboxes': torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                                        (a['bbox'] for a in mine)]).reshape(-1, 4).float(),
                'scores': torch.full((len(mine),), 0.9),
                'labels': torch.tensor([a['category_id'] - 1 for a in mine])}})
        with open(out_pkl, 'wb') as f:
            pickle.dump(samples, f)
        return 0

    def make_data(self, out, data_args, log_path):
        self.calls.append(('data', out, tuple(data_args)))
        return 0


def _main(setup, runner, *extra, seeds=('0', '1', '2')):
    return tool.main([*setup['configs'], '--seeds', *seeds, '--work-dir', setup['work'],
                      '--names', 'R18', 'LIP', *extra], runner=runner)


def test_runs_every_pair_seed_major_and_writes_the_summaries(setup, capsys):
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, '--per-class') == 0
    order = [(c[1], c[2]) for c in runner.calls if c[0] == 'train']
    assert order == [('base', 0), ('pooled', 0), ('base', 1), ('pooled', 1), ('base', 2),
                     ('pooled', 2)]
    out = capsys.readouterr().out
    assert '[run 1/6] R18 seed 0' in out and 'ETA' in out and '[run 6/6]' in out
    summary = json.load(open(os.path.join(setup['work'], 'summary.json')))
    assert summary['finished'] == summary['planned'] == 6
    # 6 images x 3 small objects; base misses 2 images' small ones, pooled 1 (when in range)
    d = summary['aggregate']['methods']['LIP']['delta']['AP_S']
    assert d['n'] == 3 and d['wins'] == 3 and d['mean'] > 0
    for seed in ('0', '1', '2'):
        base = summary['runs']['R18'][seed]['metrics']
        lip = summary['runs']['LIP'][seed]['metrics']
        assert lip['AP_L'] == base['AP_L'] == pytest.approx(1.0)  # large objects never missed
        assert lip['AP_S'] > base['AP_S']
    md = open(os.path.join(setup['work'], 'summary.md')).read()
    assert md.startswith('<!-- written by') and '| LIP |' in md and 'Per-class' in md
    assert os.path.getsize(os.path.join(setup['work'], 'summary.png')) > 1000


def test_rerun_skips_finished_runs_and_resumes_interrupted_ones(setup):
    first = FakeRunner(setup['anns'], interrupt={('pooled', 1)})
    assert _main(setup, first) == 1  # the interrupted run is reported as failed
    assert os.path.isfile(os.path.join(setup['work'], 'LIP', 'seed1', 'failed.json'))
    second = FakeRunner(setup['anns'])
    assert _main(setup, second) == 0
    # only LIP seed 1 ran again, resuming from its checkpoint
    assert second.calls == [('train', 'pooled', 1, True, second.calls[0][4]),
                            ('test', 'pooled', 1)]
    assert not os.path.exists(os.path.join(setup['work'], 'LIP', 'seed1', 'failed.json'))
    third = FakeRunner(setup['anns'])
    assert _main(setup, third) == 0 and third.calls == []


def test_a_failed_test_step_is_retried_without_retraining(setup, capsys):
    first = FakeRunner(setup['anns'], fail={('base', 2, 'test')})
    assert _main(setup, first) == 1
    err = capsys.readouterr().err
    assert 'R18 seed 2: testing failed (exit 3)' in err and 'run.log' in err
    # the other five runs finished and were summarised
    summary = json.load(open(os.path.join(setup['work'], 'summary.json')))
    assert summary['finished'] == 5 and len(summary['failures']) == 1
    second = FakeRunner(setup['anns'])
    assert _main(setup, second) == 0
    assert second.calls == [('test', 'base', 2)]


def test_report_only_runs_nothing(setup):
    assert _main(setup, FakeRunner(setup['anns']), seeds=('0', '1')) == 0
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, '--report-only', seeds=('0', '1', '2')) == 0
    assert runner.calls == []
    summary = json.load(open(os.path.join(setup['work'], 'summary.json')))
    assert summary['finished'] == 4 and summary['planned'] == 6


def test_data_seed_generates_a_set_and_points_the_configs_at_it(setup, tmp_path):
    runner = FakeRunner(setup['anns'])
    plan = tool.make_plan(tool.parse_args([*setup['configs'], '--seeds', '0', '1', '--work-dir',
                                           setup['work'], '--data-seed', '3', '--num-val', '50']))
    assert plan.data_root.endswith(os.path.join('data', 'synthetic_seed3_val50'))
    assert plan.data_args == ['--seed', '3', '--num-val', '50']
    opts = tool.data_overrides('/d/x')
    assert 'test_evaluator.ann_file=/d/x/annotations/instances_val.json' in opts
    assert 'train_dataloader.dataset.data_root=/d/x/' in opts
    # the standalone test configs load no dataset: --data-seed refuses them by name
    assert tool.main([*setup['configs'], '--seeds', '0', '1', '--work-dir', setup['work'],
                      '--data-seed', '3'], runner=runner) == 2
    assert runner.calls == []


def test_a_changed_config_does_not_reuse_or_overwrite_old_runs(setup, capsys):
    assert _main(setup, FakeRunner(setup['anns']), seeds=('0', '1')) == 0
    before = hashlib.sha256(open(os.path.join(setup['work'], 'LIP', 'seed0', 'metrics.json'),
                                 'rb').read()).hexdigest()
    with open(setup['configs'][1], 'a') as f:
        f.write("model = dict(type='pooled', width=2)\n")
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, seeds=('0', '1')) == 2
    assert 'holds a run of another experiment' in capsys.readouterr().err
    assert runner.calls == []
    after = hashlib.sha256(open(os.path.join(setup['work'], 'LIP', 'seed0', 'metrics.json'),
                                'rb').read()).hexdigest()
    assert before == after


def test_placeholders_in_options_are_expanded_per_run(setup):
    runner = FakeRunner(setup['anns'])
    opt = 'model.ckpt=/pre/{name}/seed{seed}.pth'
    assert _main(setup, runner, '--cfg-options', opt, 'model.k=1', seeds=('0', '1')) == 0
    trains = {(c[1], c[2]): c[4] for c in runner.calls if c[0] == 'train'}
    assert len(trains) == 4
    for (stem, seed), options in trains.items():
        name = {'base': 'R18', 'pooled': 'LIP'}[stem]
        assert f'model.ckpt=/pre/{name}/seed{seed}.pth' in options and 'model.k=1' in options
        assert not any('{' in o for o in options)
        manifest = json.load(open(os.path.join(setup['work'], name, f'seed{seed}', 'run.json')))
        assert manifest['options'] == [f'model.ckpt=/pre/{name}/seed{seed}.pth', 'model.k=1']
    hashes = {json.load(open(os.path.join(setup['work'], 'LIP', f'seed{s}', 'run.json')))
              ['config_sha256'] for s in (0, 1)}
    assert len(hashes) == 2  # the expanded value is part of each run's config
    summary = json.load(open(os.path.join(setup['work'], 'summary.json')))
    assert summary['cfg_options'] == [opt, 'model.k=1']  # the command's template
    again = FakeRunner(setup['anns'])
    assert _main(setup, again, '--cfg-options', opt, 'model.k=1', seeds=('0', '1')) == 0
    assert again.calls == []


def test_run_options_expands_values_only():
    assert tool.run_options(['a={name}/s{seed}', 'b={x}', 'c=2', 'd={work_dir}/p'], 'LIP', 3) == \
        ['a=LIP/s3', 'b={x}', 'c=2', 'd={work_dir}/p']
    assert tool.run_options(['d={work_dir}/{name}'], 'LIP', 3, '/w') == ['d=/w/LIP']


def test_work_dir_placeholder_runs_expanded_and_is_recorded_as_written(setup, tmp_path):
    """{work_dir} becomes the absolute work dir in the runs' options, while manifests and hashes
    keep the placeholder: a summary JSON written with one work dir restores into another."""
    import shutil
    opt = 'model.ckpt={work_dir}/pre/{name}/seed{seed}.pth'
    json_path = str(tmp_path / 'results' / 'cmp.json')
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, '--cfg-options', opt, '--json', json_path, seeds=('0', '1')) == 0
    work = os.path.abspath(setup['work'])
    for c in (c for c in runner.calls if c[0] == 'train'):
        name = {'base': 'R18', 'pooled': 'LIP'}[c[1]]
        assert f'model.ckpt={work}/pre/{name}/seed{c[2]}.pth' in c[4]
    manifest = json.load(open(os.path.join(work, 'LIP', 'seed1', 'run.json')))
    assert manifest['options'] == ['model.ckpt={work_dir}/pre/LIP/seed1.pth']
    # another work dir (a clone elsewhere) restores every run and trains nothing
    other = str(tmp_path / 'elsewhere' / 'work')
    again = FakeRunner(setup['anns'])
    argv = [*setup['configs'], '--seeds', '0', '1', '--work-dir', other, '--names', 'R18', 'LIP',
            '--cfg-options', opt, '--json', json_path]
    assert tool.main(argv, runner=again) == 0
    assert again.calls == []
    assert json.load(open(os.path.join(other, 'LIP', 'seed1', 'run.json'))) == manifest
    # whereas an absolute path written into the option ties the runs to it
    shutil.rmtree(other)
    fixed = FakeRunner(setup['anns'])
    argv[argv.index(opt)] = opt.replace('{work_dir}', other)
    assert tool.main(argv, runner=fixed) == 0
    assert len([c for c in fixed.calls if c[0] == 'train']) == 4


@pytest.mark.parametrize('argv, message', [
    (['{c0}', '{c1}', '--seeds', '0'], '--seeds: a confidence interval needs at least 2 seeds'),
    (['{c0}', '{c1}', '--seeds', '0', '0'], '--seeds: duplicate seeds'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--names', 'A', 'A'], "--names: duplicate name(s) ['A']"),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--names', 'A'], '--names: give one name per config'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--names', 'A', '../B'], "--names: '../B' cannot be"),
    (['{c0}', '{tmp}/nope.py', '--seeds', '0', '1'], "nope.py': no such file"),
    (['{c0}', '{c0}', '--seeds', '0', '1'], 'given more than once'),
    (['{c0}', '--seeds', '0', '1'], 'at least 2 configs'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--gpus', '-1'], '--gpus must be >= 0'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--cfg-options', 'foo'], "'foo' is not KEY=VALUE"),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--cfg-options', 'randomness.seed=3'], 'set by the tool'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--cfg-options', 'a.{{seed}}=1'],
     'expanded in values only'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--num-val', '5'], 'need --data-seed'),
    (['{c0}', '{c1}', '--seeds', '0', '1', '--json', '{tmp}/x.txt'], '--json must end with .json'),
])
def test_bad_arguments_are_one_line_errors(setup, capsys, argv, message):
    argv = [a.format(c0=setup['configs'][0], c1=setup['configs'][1], tmp=setup['tmp'])
            for a in argv] + ['--work-dir', setup['work']]
    runner = FakeRunner(setup['anns'])
    assert tool.main(argv, runner=runner) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1 and 'Traceback' not in err
    assert runner.calls == [] and not os.path.exists(setup['work'])


def test_foreign_output_files_are_never_overwritten(setup, capsys):
    mine = setup['tmp'] / 'notes.json'
    mine.write_text('{"my": "data"}')
    png = setup['tmp'] / 'photo.png'
    png.write_bytes(b'\x89PNG not really')
    for flag, path in (('--json', mine), ('--plot', png)):
        runner = FakeRunner(setup['anns'])
        assert _main(setup, runner, flag, str(path), seeds=('0', '1')) == 2
        assert 'was not written by this tool' in capsys.readouterr().err
        assert runner.calls == []
    assert mine.read_text() == '{"my": "data"}' and png.read_bytes() == b'\x89PNG not really'
    # its own outputs are rewritten on the next invocation
    assert _main(setup, FakeRunner(setup['anns']), seeds=('0', '1')) == 0
    assert _main(setup, FakeRunner(setup['anns']), '--report-only', seeds=('0', '1')) == 0


def test_summary_metrics_equal_direct_scoring(setup):
    from lip_det.evaluation import compare_runs
    assert _main(setup, FakeRunner(setup['anns']), seeds=('0', '1')) == 0
    summary = json.load(open(os.path.join(setup['work'], 'summary.json')))
    for name in ('R18', 'LIP'):
        for seed in (0, 1):
            pkl = os.path.join(setup['work'], name, f'seed{seed}', 'results.pkl')
            direct = compare_runs(setup['gt'], [pkl])[0][0].metrics
            assert summary['runs'][name][str(seed)]['metrics'] == pytest.approx(direct)
    agg = summary['aggregate']['methods']['LIP']['delta']['AP']
    diffs = [summary['runs']['LIP'][s]['metrics']['AP'] - summary['runs']['R18'][s]['metrics']['AP']
             for s in ('0', '1')]
    assert agg['mean'] == pytest.approx(np.mean(diffs))


def test_runs_are_reused_from_a_checkout_elsewhere(setup, tmp_path):
    """The manifest compares the config relative to the repository and the data set by its
    relative path and parameters, so a second checkout (or a moved one) resumes the same runs."""
    plan = tool.make_plan(tool.parse_args([*setup['configs'], '--seeds', '0', '1', '--work-dir',
                                           setup['work'], '--data-seed', '0']))
    a = tool.describe_config(setup['configs'][0], [], tool.data_overrides('/checkout_a/data/x'))
    b = tool.describe_config(setup['configs'][0], [], tool.data_overrides('/checkout_b/data/x'))
    assert a['config_sha256'] == b['config_sha256']
    assert a['ann_file'] == '/checkout_a/data/x/annotations/instances_val.json'
    c = tool.describe_config(setup['configs'][0], ['model.depth=3'])
    assert c['config_sha256'] != a['config_sha256']
    assert plan.data_args == ['--seed', '0']


def test_a_fresh_checkout_restores_finished_runs_from_the_summary_json(setup, tmp_path):
    import shutil
    json_path = str(tmp_path / 'results' / 'cmp.json')
    assert _main(setup, FakeRunner(setup['anns']), '--json', json_path, seeds=('0', '1')) == 0
    before = json.load(open(json_path))
    shutil.rmtree(setup['work'])  # the work dir is gone, the committed JSON is not
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, '--json', json_path, seeds=('0', '1', '2')) == 0
    assert sorted(c[2] for c in runner.calls if c[0] == 'train') == [2, 2]  # only the new seed
    after = json.load(open(json_path))
    for name in ('R18', 'LIP'):
        for seed in ('0', '1'):
            assert after['runs'][name][seed]['metrics'] == before['runs'][name][seed]['metrics']
    # a run recorded for another config is not restored: it is trained again
    shutil.rmtree(setup['work'])
    with open(setup['configs'][1], 'a') as f:
        f.write("model = dict(type='pooled', width=2)\n")
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, '--json', json_path, seeds=('0', '1', '2')) == 0
    assert sorted((c[1], c[2]) for c in runner.calls if c[0] == 'train') == [
        ('pooled', 0), ('pooled', 1), ('pooled', 2)]


def test_error_modes_are_summarised_and_cached(setup):
    assert _main(setup, FakeRunner(setup['anns']), '--error-modes', seeds=('0', '1')) == 0
    summary = json.load(open(os.path.join(setup['work'], 'summary.json')))
    em = summary['error_modes']
    assert em['score_thr'] == 0.5
    # the fake base run misses the small objects of two of six images, the pooled run of one
    for seed in ('0', '1'):
        assert em['runs']['R18'][seed]['found_small'] == pytest.approx(4 / 6)
        assert em['runs']['R18'][seed]['missed_small'] == pytest.approx(2 / 6)
        assert em['runs']['LIP'][seed]['found_small'] == pytest.approx(5 / 6)
    assert em['aggregate']['methods']['LIP']['delta']['missed_small']['mean'] == pytest.approx(-1 / 6)
    assert os.path.isfile(os.path.join(setup['work'], 'R18', 'seed0', 'error_modes_0.5.json'))
    assert 'Where small objects go' in open(os.path.join(setup['work'], 'summary.md')).read()
    assert _main(setup, FakeRunner(setup['anns']), '--error-modes', '2', seeds=('0', '1')) == 2


def test_restored_runs_keep_their_error_modes(setup, tmp_path):
    import shutil
    json_path = str(tmp_path / 'results' / 'cmp.json')
    assert _main(setup, FakeRunner(setup['anns']), '--error-modes', '--json', json_path,
                 seeds=('0', '1')) == 0
    before = json.load(open(json_path))['error_modes']
    shutil.rmtree(setup['work'])  # no results.pkl any more: only the JSON knows the error modes
    runner = FakeRunner(setup['anns'])
    assert _main(setup, runner, '--error-modes', '--json', json_path, '--report-only',
                 seeds=('0', '1')) == 0
    after = json.load(open(json_path))['error_modes']
    assert runner.calls == [] and after['runs'] == before['runs']
    assert after['per_run']['R18']['0']['tiny'] == before['per_run']['R18']['0']['tiny']


@pytest.mark.parametrize('gpus', [0, 4])
def test_subprocess_runner_commands(tmp_path, monkeypatch, gpus):
    """One process: tools/train.py / test.py; --gpus N: tools/dist_train.sh / dist_test.sh N."""
    calls = []
    monkeypatch.setattr(tool.subprocess, 'call',
                        lambda cmd, **kw: calls.append((cmd, kw['cwd'], kw['env'])) or 0)
    runner = tool.SubprocessRunner(gpus=gpus, python='/py')
    log = str(tmp_path / 'run.log')
    assert runner.train('/c.py', '/w/train', ['randomness.seed=3'], True, log) == 0
    assert runner.test('/c.py', '/w/train/epoch_8.pth', '/w/test', '/w/r.pkl', ['a=1'], log) == 0
    (train, cwd, env), (test, _, _) = calls
    assert cwd == tool.REPO and env['OMP_WAIT_POLICY'] and tool.REPO in env['PYTHONPATH']
    if gpus:
        assert train[:4] == ['bash', f'{tool.REPO}/tools/dist_train.sh', '/c.py', '4']
        assert test[:5] == ['bash', f'{tool.REPO}/tools/dist_test.sh', '/c.py',
                            '/w/train/epoch_8.pth', '4']
    else:
        assert train[:3] == ['/py', f'{tool.REPO}/tools/train.py', '/c.py']
        assert test[:4] == ['/py', f'{tool.REPO}/tools/test.py', '/c.py', '/w/train/epoch_8.pth']
    assert train[-5:] == ['--work-dir', '/w/train', '--resume', '--cfg-options',
                          'randomness.seed=3'][-5:]
    assert test[-5:] == ['/w/test', '--out', '/w/r.pkl', '--cfg-options', 'a=1']
    assert '$ ' in open(log).read()  # every command is logged before it runs

"""tools/train.py and tools/test.py report plain user errors in one line, before any Runner log.

A typo'd model type, an empty or missing checkpoint and a malformed --cfg-options item each end
the tool with a non-zero status and one ``<tool>: error: ...`` line naming the value and what
is accepted, without a traceback and without the Runner's environment/config log.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .tool_loader import REPO, load_tool, tool_path

CONFIG = os.path.join(REPO, 'configs', 'synthetic', 'faster_rcnn_lip_r18_fpn_synthetic.py')
LIP_BACKBONES = 'AdaPoolResNet, GaussianResNet, LIPDenseNet, LIPResNet, MaxEntResNet, SoftPoolResNet'

train = load_tool('train')
test = load_tool('test')


def _fails(tool, argv, capsys, status):
    with pytest.raises(SystemExit) as info:
        tool.main(argv)
    captured = capsys.readouterr()
    assert info.value.code == status, captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert 'Traceback' not in captured.err
    assert captured.out == '', 'the Runner started logging before the error'
    return lines


def _one_line(tool, argv, capsys, status, prog):
    lines = _fails(tool, argv, capsys, status)
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), lines
    return lines[0]


@pytest.mark.parametrize('tool,prog,extra', [(train, 'train.py', []),
                                             (test, 'test.py', ['w.pth'])],
                         ids=['train', 'test'])
def test_typod_backbone_type_lists_the_registered_backbones(tmp_path, capsys, tool, prog, extra):
    line = _one_line(tool, [CONFIG, *extra, '--work-dir', str(tmp_path), '--cfg-options',
                            'model.backbone.type=LIPResNett'], capsys, 2, prog)
    assert "model.backbone.type = 'LIPResNett' is not registered" in line
    assert "'LIPResNet'" in line  # the closest registered name
    assert f"lip-det's backbones are {LIP_BACKBONES}" in line
    assert 'from mmdet.registry import MODELS' in line  # where mmdet's own are listed
    assert os.listdir(tmp_path) == []  # no work dir, no log: nothing was started


@pytest.mark.parametrize('option,typo,closest', [
    ('model.neck.type', 'FPNN', 'FPN'), ('model.rpn_head.type', 'RPNHaed', 'RPNHead'),
    ('model.type', 'FasterRCNNN', 'FasterRCNN')])
def test_other_typod_model_types_name_their_config_path(tmp_path, capsys, option, typo, closest):
    line = _one_line(train, [CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                             f'{option}={typo}'], capsys, 2, 'train.py')
    assert f'{option} = {typo!r} is not registered' in line and repr(closest) in line
    assert "lip-det's backbones" not in line


def test_registered_backbones_are_lip_dets_own():
    from lip_det.engine import lip_det_backbones
    assert ', '.join(lip_det_backbones()) == LIP_BACKBONES


@pytest.mark.parametrize('content,match', [
    (b'', r"is empty \(0 bytes\); expected a PyTorch checkpoint"),
    (b'not a checkpoint', 'neither a torch.save zip archive nor a pickle')])
def test_resume_from_an_unusable_file_names_it(tmp_path, capsys, content, match):
    ckpt = tmp_path / 'epoch_1.pth'
    ckpt.write_bytes(content)
    line = _one_line(train, [CONFIG, '--work-dir', str(tmp_path / 'work'), '--resume',
                             str(ckpt)], capsys, 1, 'train.py')
    assert f'--resume checkpoint {str(ckpt)!r}' in line
    assert re.search(match, line), line
    assert not (tmp_path / 'work').exists()


def test_resume_from_a_missing_file_or_a_directory(tmp_path, capsys):
    line = _one_line(train, [CONFIG, '--resume', str(tmp_path / 'nope.pth')], capsys, 1,
                     'train.py')
    assert 'does not exist' in line and 'nope.pth' in line
    line = _one_line(train, [CONFIG, '--resume', str(tmp_path)], capsys, 1, 'train.py')
    assert 'is a directory' in line


@pytest.mark.parametrize('content,match', [(b'', 'is empty'), (None, 'does not exist')])
def test_test_tool_checkpoint_is_checked_first(tmp_path, capsys, content, match):
    ckpt = tmp_path / 'model.pth'
    if content is not None:
        ckpt.write_bytes(content)
    line = _one_line(test, [CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'work')], capsys,
                     1, 'test.py')
    assert f'checkpoint {str(ckpt)!r}' in line and match in line


@pytest.mark.parametrize('tool,prog,extra', [(train, 'train.py', []),
                                             (test, 'test.py', ['w.pth'])],
                         ids=['train', 'test'])
@pytest.mark.parametrize('item,message', [
    ('foo', "'foo' is not KEY=VALUE"), ('=1', "'=1' is not KEY=VALUE"),
    ('a.b=[1,2', "'a.b=[1,2': cannot parse the value")])
def test_cfg_options_item_that_is_not_key_value(capsys, tool, prog, extra, item, message):
    with pytest.raises(SystemExit) as info:
        tool.main([CONFIG, *extra, '--cfg-options', item])
    err = capsys.readouterr().err
    assert info.value.code == 2 and 'Traceback' not in err
    assert f'{prog}: error: argument --cfg-options: {message}' in err


def test_cfg_options_that_cannot_be_applied(capsys):
    line = _one_line(train, [CONFIG, '--cfg-options', 'model.backbone.depth.x=1'], capsys, 2,
                     'train.py')
    assert '--cfg-options' in line and 'cannot be applied' in line


def test_missing_config_file(tmp_path, capsys):
    line = _one_line(train, [str(tmp_path / 'nope.py')], capsys, 2, 'train.py')
    assert 'nope.py' in line and 'does not exist' in line


def test_train_subprocess_prints_one_line_and_no_log(tmp_path):
    """As users run it: a fresh interpreter, nothing but the error on stdout/stderr."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run([sys.executable, tool_path('train'), CONFIG, '--work-dir',
                           str(tmp_path / 'work'), '--cfg-options',
                           'model.backbone.type=LIPResNett'], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ''
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and 'LIPResNett' in proc.stderr
    assert not (tmp_path / 'work').exists()

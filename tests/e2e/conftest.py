"""Shared fixtures of the end-to-end tests: a tiny synthetic set and tool runners."""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTH_CONFIGS = osp.join(REPO, 'configs', 'synthetic')
LIP_SYNTH_CONFIG = osp.join(SYNTH_CONFIGS, 'faster_rcnn_lip_r18_fpn_synthetic.py')

# Tiny but complete: every size range and class occurs in both splits. 160 px is the
# smallest size that still holds large (> 96^2) objects.
TINY_SIZE = 160
TINY_SET = dict(num_train=16, num_val=8, seed=3, width=TINY_SIZE, height=TINY_SIZE)


@pytest.fixture(scope='session')
def tiny_synthetic(tmp_path_factory) -> str:
    """Root of a 16 + 8 image synthetic COCO set (160 px), generated once per session."""
    from lip_det.datasets import SyntheticCocoConfig, generate_synthetic_coco
    root = str(tmp_path_factory.mktemp('synthetic') / 'set')
    generate_synthetic_coco(root, SyntheticCocoConfig(**TINY_SET))
    return root


def write_child_config(path: str, base: str, data_root: str, extra: str = '',
                       batch_size: int = 4, with_mask: bool = False) -> str:
    """Write a config inheriting ``base`` that reads the tiny set at ``data_root``; return its path.

    ``with_mask``: the pipelines also load the instance masks (a set made with ``masks=True``).
    """
    data_root = data_root.rstrip('/') + '/'
    annotations = 'with_bbox=True, with_mask=True' if with_mask else 'with_bbox=True'
    text = f'''_base_ = {base!r}
data_root = {data_root!r}
scale = ({TINY_SIZE}, {TINY_SIZE})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', {annotations}),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', {annotations}),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(batch_size={batch_size}, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
{extra}
'''
    with open(path, 'w') as f:
        f.write(text)
    return path


def tool_env(threads: int = 2) -> Dict[str, str]:
    """Environment for a tool subprocess: the repo importable, bounded threads, no GPU."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env['OMP_NUM_THREADS'] = str(threads)
    # CI shares 2 cores between jobs: spinning OpenMP threads would slow every step severalfold.
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    env['CUDA_VISIBLE_DEVICES'] = ''
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env


def run_tool(args: Sequence[str], timeout: float, cwd: Optional[str] = None,
             env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run ``python args...`` (or a shell script) and fail the test with its output on error."""
    cmd: List[str] = list(args)
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    proc = subprocess.run(cmd, cwd=cwd or REPO, env=env or tool_env(), capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(cmd)} exited {proc.returncode}\n--- stdout ---\n'
                    f'{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


def read_scalars(work_dir: str) -> List[dict]:
    """The records of every run's vis_data/scalars.json under ``work_dir``, oldest run first."""
    records = []
    for root, dirs, files in os.walk(work_dir):
        dirs.sort()  # run directories are timestamps
        if 'scalars.json' in files and root.endswith('vis_data'):
            with open(osp.join(root, 'scalars.json')) as f:
                records += [json.loads(line) for line in f if line.strip()]
    return records

"""tools/gpu_check.sh, the one prepared run for a lent GPU machine: it must at least parse and,
where there is no GPU, refuse at once with a clear summary instead of building or testing. (Its
whole pipeline is dry-run on the CPU with GPU_CHECK_ALLOW_CPU=1, ~2-3 min: too slow for here.)"""
import os
import subprocess
import sys

import pytest
import torch

from .tool_loader import REPO

SCRIPT = os.path.join(REPO, 'tools', 'gpu_check.sh')


def test_script_parses():
    proc = subprocess.run(['bash', '-n', SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_without_a_gpu_it_refuses_with_a_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('GPU_CHECK_ALLOW_CPU', 'OUT')}
    env['PYTHON'] = sys.executable
    proc = subprocess.run(['bash', SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=240)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    summary = (tmp_path / 'summary.txt').read_text()
    assert 'no GPU' in summary and 'overall: FAILED' in summary
    assert 'GPU_CHECK_ALLOW_CPU=1' in proc.stdout
    assert (tmp_path / 'info.txt').read_text().startswith('host ')
    assert not (tmp_path / 'build.log').exists()

"""torch.compile of a pooled backbone as the very first thing a process runs.

The extension used to load on first use, i.e. inside dynamo's trace of the first compiled call,
whose guards then failed on the same frame ("Guard failed on the same frame it was created").
Only a fresh process shows it: any eager op run earlier (as in every other test) hides it.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys
    if sys.argv[1] == 'no-extension':
        sys.modules['lip_det._C'] = None  # import lip_det._C raises ImportError: reference ops
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    import lip_det
    from lip_det.ops import _ext, backend
    register_all_modules()
    # Loaded at import, before any op or trace could trigger it.
    assert 'error' in _ext._state, _ext._state
    torch.manual_seed(0)
    model = MODELS.build(dict(type='LIPResNet', depth=18, base_channels=16))
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        compiled = torch.compile(model, backend='eager', fullgraph=sys.argv[2] == 'fullgraph')
        out = compiled(x)  # the first op call of the process
        again = compiled(x)
        eager = model(x)
    for a, b, c in zip(out, again, eager):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(b, c)
    print('OK', backend(), [tuple(o.shape) for o in out])
''')


@pytest.mark.slow
@pytest.mark.parametrize('ext, fullgraph', [('extension', 'fullgraph'),
                                            ('extension', 'graph-breaks'),
                                            ('no-extension', 'fullgraph')])
def test_compile_is_the_first_call_of_a_process(ext, fullgraph):
    pytest.importorskip('mmdet')  # the script builds LIPResNet from mmdet's MODELS
    from lip_det.ops import _ext
    if ext == 'extension' and not _ext.available():
        pytest.skip(f'lip_det._C not built: {_ext.load_error()}')
    env = {k: v for k, v in os.environ.items() if k != 'LIP_DET_OPS'}
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, '-c', SCRIPT, ext, fullgraph], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    expected = 'fused' if ext == 'extension' else 'reference'
    assert f'OK {expected} ' in proc.stdout, proc.stdout

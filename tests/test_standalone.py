"""lip_det.ops and lip_det.layers need torch alone; mmdet registration follows mmdet, in any order.

Every check runs in a fresh interpreter: which modules an import pulls in, and when the
registration hooks fire, depend on what the process imported before.
"""
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_mmdet = pytest.mark.skipif(find_spec('mmdet') is None, reason='needs mmdet')

# Makes any import of an OpenMMLab package raise ImportError, as on a machine without them.
BLOCK_OPENMMLAB = '''
    import importlib.abc, sys
    OPENMMLAB = ('mmcv', 'mmdet', 'mmengine', 'mmpretrain')

    class _Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in OPENMMLAB:
                raise ImportError(f'{name} is blocked: torch-only test')
            return None

    sys.meta_path.insert(0, _Blocker())

    def openmmlab_loaded():
        return sorted(m for m in sys.modules if m.split('.')[0] in OPENMMLAB)
'''


def _run(*parts: str, timeout: int = 300) -> str:
    """Run the code ``parts`` in order in a fresh interpreter at the repository root; its stdout."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO, env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    script = '\n'.join(textwrap.dedent(part) for part in parts)
    proc = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


def test_ops_and_layers_with_openmmlab_blocked():
    out = _run(BLOCK_OPENMMLAB, '''
        import inspect
        import lip_det, lip_det.ops, lip_det.layers
        import torch
        from lip_det.layers import POOLING_LAYERS, SoftGate, build_pooling_layer
        from lip_det.layers import lip_logits as ll
        from lip_det.layers.norm import build_norm_layer
        assert openmmlab_loaded() == [], openmmlab_loaded()

        def required(fn, skip):
            return [p for p in list(inspect.signature(fn).parameters.values())[skip:]
                    if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]

        # Every layer of the table, from its config, with only its required arguments given: a
        # layer added with @register_pooling is covered without editing this test.
        assert {'LIPPool2d', 'SoftPool1d', 'SoftPool2d', 'SoftPool3d', 'MaxEntPool2d',
                'GaussianPool2d'} <= set(POOLING_LAYERS), sorted(POOLING_LAYERS)
        torch.manual_seed(0)
        for name, cls in sorted(POOLING_LAYERS.items()):
            args = {p.name: dict(channels=4, kernel_size=2)[p.name] for p in required(cls, 0)}
            layer = build_pooling_layer(dict(type=name, **args)).train()
            x = torch.randn(2, 4, *[6] * getattr(layer, 'nd', 2), requires_grad=True)
            extra = [torch.randn_like(x) for _ in required(layer.forward, 1)]  # LIP's logit
            y = layer(x, *extra)
            y.square().sum().backward()
            assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
            print('pooled', name, tuple(y.shape))

        x = torch.randn(2, 8, 7, 9, requires_grad=True)
        trunk = ll.BottleneckShared(8, width=4)
        heads = ll.SharedLogitSequential(ll.BottleneckLIP(8, width=4), torch.nn.Conv2d(8, 8, 1))
        outs = [ll.SimplifiedLIP(8)(x), ll.ProjectionLIP(8)(x), heads(x, trunk(x)),
                ll.DenseBottleneckLIP(8, width=4)(x)]
        sum(o.sum() for o in outs).backward()
        assert torch.isfinite(x.grad).all()
        heads.init_weights()  # the LIP member is back to average pooling
        assert heads[0].zero_conv().weight.abs().sum() == 0
        assert float(SoftGate(3.0)(torch.zeros(1))) == 1.5
        for cfg in (dict(type='BN'), dict(type='SyncBN'), dict(type='GN', num_groups=2),
                    dict(type='IN', affine=True), dict(type='LN'),
                    dict(type='BN', requires_grad=False)):
            name, norm = build_norm_layer(cfg, 4)
            assert all(p.requires_grad == cfg.get('requires_grad', True) for p in norm.parameters())
        try:
            build_norm_layer(dict(type='MMSyncBN'), 4)  # only mmcv has it
        except KeyError as e:
            assert 'without mmcv' in str(e), e
        else:
            raise AssertionError('MMSyncBN built without mmcv')
        assert openmmlab_loaded() == [], openmmlab_loaded()
        print('OK')
    ''')
    assert out.strip().endswith('OK') and out.count('pooled ') >= 6, out


def test_import_time_of_the_ops():
    """A benchmark printout (run with -s): ops-only import next to torch's own; no timing assert."""
    out = _run('''
        import sys, time
        t0 = time.perf_counter()
        import torch
        t1 = time.perf_counter()
        import lip_det.ops
        t2 = time.perf_counter()
        assert not [m for m in sys.modules if m.split('.')[0] in ('mmcv', 'mmdet', 'mmengine')]
        print(f'import torch {t1 - t0:.2f} s, then import lip_det.ops {t2 - t1:.2f} s')
    ''')
    print(out.strip())


CHECK_REGISTERED = '''
    from mmdet.registry import MODELS
    from mmengine.runner.checkpoint import CheckpointLoader
    from lip_det.compat import load_from_local
    from lip_det.layers import POOLING_LAYERS, SoftGate
    from lip_det.models.backbones import LIPDenseNet, LIPResNet, SoftPoolResNet
    for name, cls in dict(POOLING_LAYERS, SoftGate=SoftGate, LIPResNet=LIPResNet,
                          SoftPoolResNet=SoftPoolResNet, LIPDenseNet=LIPDenseNet).items():
        assert MODELS.get(name) is cls, name
    assert CheckpointLoader._get_checkpoint_loader('/tmp/x.pth') is load_from_local
'''


@needs_mmdet
def test_lip_det_first_then_mmdet_registry():
    _run('''
        import sys
        import lip_det
        assert 'mmdet' not in sys.modules and 'mmengine' not in sys.modules
        from mmdet.registry import MODELS
        from lip_det.layers import POOLING_LAYERS, SoftPool2d, register_pooling
        # The layers are in as soon as the registry exists; the backbones come with mmdet's own
        # models, which MODELS imports before its first lookup.
        assert MODELS.module_dict['SoftPool2d'] is SoftPool2d
        assert set(POOLING_LAYERS) <= set(MODELS.module_dict)
        assert 'mmdet.models' not in sys.modules and 'LIPResNet' not in MODELS.module_dict
        assert MODELS.get('LIPResNet').__module__ == 'lip_det.models.backbones.lip_resnet'
        model = MODELS.build(dict(type='LIPResNet', depth=18, base_channels=8))

        @register_pooling  # a pooling layer defined after mmdet loaded is mirrored too
        class LatePool2d(SoftPool2d):
            pass
        assert MODELS.get('LatePool2d') is LatePool2d
    ''', CHECK_REGISTERED)


@needs_mmdet
def test_mmdet_first_then_lip_det():
    _run('''
        import sys
        from mmdet.utils import register_all_modules
        register_all_modules()
        from mmdet.registry import MODELS
        assert 'lip_det' not in sys.modules
        import lip_det
        assert 'LIPResNet' in MODELS.module_dict and 'SoftPool2d' in MODELS.module_dict
    ''', CHECK_REGISTERED)


@needs_mmdet
def test_ops_first_then_config_custom_imports(tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent('''
        custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
        default_scope = 'mmdet'
        backbone = dict(type='MaxEntResNet', depth=18, base_channels=8)
        pool = dict(type='GaussianPool2d', channels=8)
    '''))
    _run(f'''
        import sys
        import lip_det.ops
        assert 'mmdet' not in sys.modules
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(cfg)!r})
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        backbone = MODELS.build(cfg.backbone)
        assert type(backbone).__name__ == 'MaxEntResNet'
        assert type(MODELS.build(cfg.pool)).__name__ == 'GaussianPool2d'
    ''', CHECK_REGISTERED)


@needs_mmdet
def test_ops_first_then_mmdet_apis():
    """mmdet.registry first loads from inside mmdet's own imports here: no import cycle."""
    out = _run('''
        import sys
        import lip_det.ops
        from mmdet.apis import init_detector  # noqa: F401
    ''', CHECK_REGISTERED, '''
        print('apis', 'mmdet.apis' in sys.modules, MODELS.get('LIPResNet').__name__,
              MODELS.get('AdaPool2d').__name__)
    ''')
    # CHECK_REGISTERED asserted every layer and backbone; this says the script got that far.
    assert out.split()[-4:] == ['apis', 'True', 'LIPResNet', 'AdaPool2d']

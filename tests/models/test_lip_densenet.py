"""LIPDenseNet: reference keys and parameter count, multi-scale outputs, mmdet's contract."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from tests.models.common import FC_PARAMS_D121, build, logit_modules, n_params

from lip_det.layers.lip_logits import LIPLayer

SIZE = 32  # the smallest input whose last LIP (after 3 poolings) still sees 2x2
# The last entry is torchvision's DenseNet classifier width (densenet121/161/169/201).
CHANNELS = {121: (256, 512, 1024, 1024), 169: (256, 512, 1280, 1664),
            161: (384, 768, 2112, 2208), 201: (256, 512, 1792, 1920)}


@pytest.mark.parametrize('depth', [121, 161, 169, 201])
def test_output_shapes(depth):
    model = build('LIPDenseNet', depth=depth).eval()
    assert model.out_channels == CHANNELS[depth]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, SIZE, SIZE))
    side = SIZE // 4
    assert [tuple(o.shape) for o in outs] == [(1, c, side >> i, side >> i)
                                             for i, c in enumerate(CHANNELS[depth])]
    assert all((o >= 0).all() for o in outs)  # pre-activated (ReLU) features


def test_out_indices():
    model = build('LIPDenseNet', out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, SIZE, SIZE))
    assert [o.shape[1] for o in outs] == [512, 1024]


def test_reference_keys_and_parameter_count():
    model = build('LIPDenseNet', depth=121)
    assert round((n_params(model) + FC_PARAMS_D121) / 1e6, 3) == 8.691
    sd = model.state_dict()
    expected = {
        'features.conv0.weight': (64, 3, 7, 7),
        'features.pool0.logit.conv1.weight': (64, 64, 3, 3),
        'features.pool0.logit.bn1.weight': (64,),
        'features.denseblock1.denselayer1.norm1.running_mean': (64,),
        'features.denseblock1.denselayer6.conv2.weight': (32, 128, 3, 3),
        'features.transition1.conv.weight': (128, 256, 1, 1),
        'features.transition1.pool.logit.conv1.weight': (128, 128, 1, 1),
        'features.transition1.pool.logit.conv2.weight': (128, 128, 3, 3),
        'features.transition3.pool.logit.conv3.weight': (512, 128, 1, 1),
        'features.transition3.pool.logit.bn3.bias': (512,),
        'features.norm5.weight': (1024,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert all(k.startswith('features.') for k in sd)


def test_lip_layers_start_as_average_pooling():
    torch.manual_seed(0)
    model = build('LIPDenseNet')
    model.init_weights()
    x = torch.randn(2, 128, 8, 8)
    pool = model.features.transition1.pool
    torch.testing.assert_close(pool(x), F.avg_pool2d(x, 2, 2), rtol=1e-5, atol=1e-6)
    x = torch.randn(2, 64, 9, 9)
    torch.testing.assert_close(model.features.pool0(x),
                               F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                               rtol=1e-5, atol=1e-6)


def test_transitions_without_lip_are_average_pooling():
    model = build('LIPDenseNet', lip_stem=False, lip_transitions=(False, True, False))
    assert isinstance(model.features.pool0, torch.nn.MaxPool2d)
    assert isinstance(model.features.transition1.pool, torch.nn.AvgPool2d)
    assert isinstance(model.features.transition2.pool, LIPLayer)
    proj = build('LIPDenseNet', logit_module='projection')
    assert proj.state_dict()['features.transition2.pool.logit.conv.weight'].shape == (256, 256, 1, 1)


def test_gradients_reach_every_logit_module():
    torch.manual_seed(0)
    model = build('LIPDenseNet', norm_eval=False)
    for _, m in logit_modules(model):
        torch.nn.init.normal_(m.zero_conv().weight, std=0.2)
    model.train()
    sum(o.square().mean() for o in model(torch.randn(2, 3, SIZE, SIZE))).backward()
    modules = logit_modules(model)
    assert len(modules) == 4
    for name, m in modules:
        for pname, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{name}.{pname}'


def test_frozen_stages_and_norm_eval():
    torch.manual_seed(0)
    model = build('LIPDenseNet', frozen_stages=2, norm_eval=False).train()
    frozen = ('features.conv0', 'features.norm0', 'features.pool0', 'features.denseblock1',
              'features.transition1', 'features.denseblock2')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                          weight_decay=1e-2)
    sum(o.square().mean() for o in model(torch.randn(2, 3, SIZE, SIZE))).backward()
    opt.step()
    after = model.state_dict()
    for key in before:
        if key.startswith(frozen):
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before['features.transition2.conv.weight'],
                           after['features.transition2.conv.weight'])
    assert not model.features.denseblock2.training and model.features.denseblock3.training

    model = build('LIPDenseNet', norm_eval=True).train()
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model(torch.randn(2, 3, SIZE, SIZE))
    now = model.state_dict()
    assert all(torch.equal(v, now[k]) for k, v in stats.items())


def test_with_cp_same_gradients():
    torch.manual_seed(0)
    plain = build('LIPDenseNet', drop_rate=0.0)
    ckpt = build('LIPDenseNet', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, SIZE, SIZE)
    grads = []
    for model in (plain, ckpt):
        model.train()
        sum(o.square().mean() for o in model(x)).backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_group_norm():
    model = build('LIPDenseNet', norm_cfg=dict(type='GN', num_groups=32)).train()
    assert isinstance(model.features.norm0, torch.nn.GroupNorm)
    assert len(model(torch.randn(1, 3, SIZE, SIZE))) == 4


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=264), 'depth'), (dict(out_indices=(4,)), 'out_indices'),  # 264: not torchvision's
    (dict(frozen_stages=5), 'frozen_stages'), (dict(logit_module='x'), 'logit_module'),
    (dict(lip_transitions=(True,)), 'lip_transitions'), (dict(drop_rate=1.5), 'drop_rate'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build('LIPDenseNet', **kwargs)

"""LIPResNet, SoftPoolResNet, MaxEntResNet, GaussianResNet, AdaPoolResNet: architecture and
mmdet's contract."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from tests.models.common import (DEPTHS, FC_PARAMS, RESNETS, build, logit_modules, n_params)

from lip_det.layers.lip_logits import LIPLayer

SIZE = 64
SMALL = 32  # smallest input whose last LIP layer (stage 4) still pools a 2x2 map


def _expected_shapes(type_, depth, size=SIZE, batch=1):
    expansion = 1 if depth in (18, 34) else 4
    # Every family reaches stride 4 before layer1 (LIP stem; SoftPool 2x2; stride-1 conv + 2 pools).
    side = size // 4
    return [(batch, 64 * 2**i * expansion, side // 2**i, side // 2**i) for i in range(4)]


def _randomize_zero_inits(model):
    """Move every zero-initialised weight off zero so that wiring mistakes become visible."""
    torch.manual_seed(1)
    for _, m in logit_modules(model):
        if isinstance(m, LIPLayer):
            torch.nn.init.normal_(m.zero_conv().weight, std=0.2)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.normal_(m.bias, std=0.1)
            m.running_mean.normal_(std=0.1)
            m.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('type_', RESNETS)
def test_output_shapes_every_depth(type_, depth):
    model = build(type_, depth=depth).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == _expected_shapes(type_, depth, size=32)
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('out_indices', [(0,), (3,), (1, 2), (0, 2, 3)])
@pytest.mark.parametrize('type_', RESNETS)
def test_out_indices(type_, out_indices):
    model = build(type_, depth=18, out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, SIZE, SIZE))
    full = _expected_shapes(type_, 18)
    assert [tuple(o.shape) for o in outs] == [full[i] for i in out_indices]


@pytest.mark.parametrize('type_,depth,params_with_fc,keys_with_fc', [
    ('LIPResNet', 50, 23.864, 359),
    ('LIPResNet', 101, 42.856, None),
    ('MaxEntResNet', 50, 31.087, 390),
    ('GaussianResNet', 50, 33.855, 425),
    ('SoftPoolResNet', 50, 25.557, 320),  # torchvision ResNet-50
])
def test_reference_parameter_and_key_counts(type_, depth, params_with_fc, keys_with_fc):
    model = build(type_, depth=depth)
    assert round((n_params(model) + FC_PARAMS) / 1e6, 3) == params_with_fc
    if keys_with_fc is not None:
        assert len(model.state_dict()) + 2 == keys_with_fc  # + fc.weight, fc.bias


def test_lip_resnet50_reference_keys():
    sd = build('LIPResNet', depth=50).state_dict()
    expected = {
        'maxpool.logit.conv.weight': (64, 64, 3, 3),
        'maxpool.logit.bn.weight': (64,),
        'layer1.0.downsample.conv.weight': (256, 64, 1, 1),
        'layer1.0.downsample.bn.running_var': (256,),
        'layer2.0.bottleneck_shared.logit.conv1.weight': (128, 256, 1, 1),
        'layer2.0.bottleneck_shared.logit.bn1.bias': (128,),
        'layer2.0.bottleneck_shared.logit.conv2.weight': (128, 128, 3, 3),
        'layer2.0.bottleneck_shared.logit.bn2.weight': (128,),
        'layer2.0.conv2.0.postprocessing.conv.weight': (128, 128, 1, 1),
        'layer2.0.conv2.0.postprocessing.bn.weight': (128,),
        'layer2.0.conv2.1.weight': (128, 128, 1, 1),
        'layer2.0.downsample.lip.postprocessing.conv.weight': (256, 128, 1, 1),
        'layer2.0.downsample.conv.weight': (512, 256, 1, 1),
        'layer2.0.downsample.bn.weight': (512,),
        'layer4.0.downsample.lip.postprocessing.conv.weight': (1024, 128, 1, 1),
        'layer4.2.bn3.num_batches_tracked': (),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert 'layer1.0.bottleneck_shared.logit.conv1.weight' not in sd
    assert not any(k.startswith('fc.') for k in sd)


def test_gfgp_reference_keys():
    maxent = build('MaxEntResNet', depth=50).state_dict()
    for prefix, c in [('pool1', 64), ('pool', 64), ('layer2.0.pooling', 512),
                      ('layer4.0.pooling', 2048)]:
        assert maxent[f'{prefix}.ToParam.1.weight'].shape == (c // 2, c, 1, 1)
        assert maxent[f'{prefix}.ToParam.4.bias'].shape == (c,)
        assert maxent[f'{prefix}.ToParam.5.running_mean'].shape == (c,)
    assert maxent['layer2.0.downsample.0.weight'].shape == (512, 256, 1, 1)
    gauss = build('GaussianResNet', depth=50).state_dict()
    for part in ('ToHidden.1.weight', 'ToHidden.2.running_var', 'ToMean.0.bias', 'ToMean.1.weight',
                 'ToSigma.0.weight', 'ToSigma.1.bias'):
        assert f'layer3.0.pooling.{part}' in gauss and f'pool1.{part}' in gauss
    soft = build('SoftPoolResNet', depth=50).state_dict()
    plain = build('ResNet', depth=50).state_dict()
    assert {k: v.shape for k, v in soft.items()} == {k: v.shape for k, v in plain.items()}


def test_strides_follow_the_references():
    lip = build('LIPResNet', depth=50)
    assert lip.layer2[0].conv2[0].stride == 2 and lip.layer2[0].downsample.conv.stride == (1, 1)
    assert lip.layer1[0].downsample.conv.stride == (1, 1) and lip.layer2[1].conv2.stride == (1, 1)
    gfgp = build('MaxEntResNet', depth=50)
    assert gfgp.conv1.stride == (1, 1)
    assert gfgp.layer3[0].conv2.stride == (1, 1) and gfgp.layer3[0].downsample[0].stride == (1, 1)
    assert gfgp.layer3[0].pooling.kernel_size == 2 and gfgp.layer3[0].pooling.channels == 1024
    basic = build('GaussianResNet', depth=18)
    assert basic.layer2[0].conv1.stride == (1, 1) and basic.layer2[0].pooling.channels == 128


@pytest.mark.parametrize('depth', [18, 50])
def test_lip_resnet_without_lip_is_mmdet_resnet(depth):
    """All LIP switched off, the backbone computes exactly mmdet's ResNet."""
    torch.manual_seed(0)
    plain = build('ResNet', depth=depth)
    plain.eval()  # mmdet's ResNet.train returns None
    _randomize_zero_inits(plain)
    lip = build('LIPResNet', depth=depth, lip_stem=False, lip_stages=(False,) * 4).eval()
    renamed = {k.replace('downsample.0.', 'downsample.conv.').replace('downsample.1.', 'downsample.bn.'): v
               for k, v in plain.state_dict().items()}
    lip.load_state_dict(renamed, strict=True)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        for a, b in zip(plain(x), lip(x)):
            torch.testing.assert_close(a, b)


def _avg3(x):
    return F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)


def test_lip_blocks_at_init_are_average_pooling_blocks():
    """With zero logits, LIP-Bottleneck = [conv1, avg-pool, 1x1 conv, conv3] + [avg-pool, conv, bn]."""
    torch.manual_seed(0)
    model = build('LIPResNet', depth=50)
    model.init_weights()
    for _, m in logit_modules(model):
        if isinstance(m, LIPLayer):
            assert m.zero_conv().weight.abs().sum() == 0
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for m in bns:  # give bn3 (zero-init residual) a non-zero weight so the main path counts
        torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    model.eval()
    x = torch.randn(2, 64, 16, 16)
    torch.testing.assert_close(model.maxpool(x), _avg3(x), rtol=1e-5, atol=1e-6)
    blk = model.layer2[0]
    x = torch.randn(2, 256, 16, 16)
    with torch.no_grad():
        out = F.relu(blk.bn1(blk.conv1(x)))
        out = F.relu(blk.bn2(blk.conv2[1](_avg3(out))))
        out = blk.bn3(blk.conv3(out))
        identity = blk.downsample.bn(blk.downsample.conv(_avg3(x)))
        torch.testing.assert_close(blk(x), F.relu(out + identity), rtol=1e-4, atol=1e-5)


def test_lip_basic_block_design():
    """LIP-R18's stride-2 block: LIP pools the block input once; both paths read it."""
    torch.manual_seed(0)
    model = build('LIPResNet', depth=18)
    _randomize_zero_inits(model)
    model.eval()
    blk = model.layer3[0]
    assert blk.conv1.stride == (1, 1) and blk.conv1.kernel_size == (3, 3)
    assert blk.downsample.conv.stride == (1, 1) and not hasattr(blk.downsample, 'lip')
    x = torch.randn(2, 128, 8, 8)
    with torch.no_grad():
        trunk = blk.bottleneck_shared(x)
        logit = blk.lip.postprocessing(trunk)
        w = logit.exp()
        pooled = F.avg_pool2d(x * w, 3, 2, 1) / F.avg_pool2d(w, 3, 2, 1)
        out = blk.bn2(blk.conv2(F.relu(blk.bn1(blk.conv1(pooled)))))
        expected = F.relu(out + blk.downsample.bn(blk.downsample.conv(pooled)))
        torch.testing.assert_close(blk(x), expected, rtol=1e-4, atol=1e-5)


def test_projection_logit_module():
    model = build('LIPResNet', depth=50, logit_module='projection')
    sd = model.state_dict()
    assert sd['layer2.0.conv2.0.logit.conv.weight'].shape == (128, 128, 1, 1)
    assert sd['layer2.0.downsample.lip.logit.conv.weight'].shape == (256, 256, 1, 1)
    assert not any('bottleneck_shared' in k for k in sd)
    # ResNet-50 - the three strided 3x3 convs + their 1x1 replacements + stem LIP + one
    # C->C projection (and IN) per LIP layer: main path (planes), shortcut (inplanes).
    expected = (23_508_032 - 9 * (128**2 + 256**2 + 512**2) + (128**2 + 256**2 + 512**2)
                + (64 * 64 * 9 + 128) + sum(c * c + 2 * c for c in (128, 256, 512, 256, 512, 1024)))
    assert n_params(model) == expected


def test_lip_placement_options():
    model = build('LIPResNet', depth=50, lip_stem=False, lip_stages=(True, False, True, False))
    assert isinstance(model.maxpool, torch.nn.MaxPool2d)
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].downsample.conv.stride == (2, 2)
    assert isinstance(model.layer3[0].conv2[0], LIPLayer)
    assert model.layer4[0].bottleneck_shared is None
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, SIZE, SIZE))
    assert [tuple(o.shape) for o in outs] == _expected_shapes('LIPResNet', 50)


def _train_step(model, steps=2, size=SIZE):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1,
                          momentum=0.9, weight_decay=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(o.square().mean() for o in model(torch.randn(2, 3, size, size)))
        loss.backward()
        opt.step()


def _stem_names(type_):
    return {'LIPResNet': ('conv1', 'bn1', 'maxpool'), 'SoftPoolResNet': ('conv1', 'bn1'),
            'MaxEntResNet': ('conv1', 'bn1', 'pool1', 'pool'),
            'GaussianResNet': ('conv1', 'bn1', 'pool1', 'pool'),
            'AdaPoolResNet': ('conv1', 'bn1', 'maxpool')}[type_]


@pytest.mark.parametrize('type_', RESNETS)
def test_frozen_stages_bit_identical_after_optimizer_steps(type_):
    torch.manual_seed(0)
    model = build(type_, depth=18, frozen_stages=2, norm_eval=False)
    _randomize_zero_inits(model)
    frozen = _stem_names(type_) + ('layer1', 'layer2')
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in frozen:
        module = getattr(model, name)
        assert name == 'conv1' or not module.training, name  # mmdet leaves conv1's flag alone
        assert all(not p.requires_grad for p in module.parameters()), name
    _train_step(model, size=SMALL)
    after = model.state_dict()
    for key, value in before.items():
        if key.split('.')[0] in frozen:
            assert torch.equal(value, after[key]), key
    changed = [k for k in before if k.startswith('layer3.') and not torch.equal(before[k], after[k])]
    assert changed, 'the unfrozen stages must train'
    # The stem pools are frozen with the stem (and put in eval mode by train()).
    for name in _stem_names(type_)[2:]:
        assert not getattr(model, name).training


@pytest.mark.parametrize('type_', RESNETS)
def test_norm_eval_keeps_bn_statistics(type_):
    torch.manual_seed(0)
    for norm_eval in (True, False):
        model = build(type_, depth=18, norm_eval=norm_eval).train()
        bns = {n: (m.running_mean.clone(), m.running_var.clone())
               for n, m in model.named_modules() if isinstance(m, _BatchNorm)}
        assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm)) == norm_eval
        with torch.no_grad():
            model(torch.randn(2, 3, SIZE, SIZE))
        now = {n: m for n, m in model.named_modules() if isinstance(m, _BatchNorm)}
        same = [torch.equal(mean, now[n].running_mean) and torch.equal(var, now[n].running_var)
                for n, (mean, var) in bns.items()]
        assert all(same) if norm_eval else not any(same)


@pytest.mark.parametrize('depth,logit_module', [(50, 'bottleneck'), (18, 'bottleneck'),
                                                (34, 'projection')])
def test_gradients_reach_every_logit_module(depth, logit_module):
    torch.manual_seed(0)
    model = build('LIPResNet', depth=depth, logit_module=logit_module, norm_eval=False)
    # The head convs start at zero, which blocks the gradient to the trunk behind them on the
    # very first step; move them off zero as one SGD step would.
    _randomize_zero_inits(model)
    model.train()
    loss = sum(o.square().mean() for o in model(torch.randn(2, 3, SMALL, SMALL)))
    loss.backward()
    modules = logit_modules(model)
    # stem + per stride-2 block: trunk and heads (bottleneck) or one projection per LIP layer
    expected = {(50, 'bottleneck'): 1 + 3 * 3, (18, 'bottleneck'): 1 + 3 * 2,
                (34, 'projection'): 1 + 3 * 1}
    assert len(modules) == expected[depth, logit_module]
    for name, m in modules:
        for pname, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{name}.{pname}'


@pytest.mark.parametrize('type_', ['MaxEntResNet', 'GaussianResNet'])
def test_gradients_reach_every_gfgp_estimator(type_):
    torch.manual_seed(0)
    model = build(type_, depth=18, norm_eval=False).train()
    loss = sum(o.square().mean() for o in model(torch.randn(2, 3, SMALL, SMALL)))
    loss.backward()
    pools = [(n, m) for n, m in model.named_modules() if n.endswith('pool1') or n == 'pool'
             or n.endswith('.pooling')]
    assert len(pools) == 5
    for name, pool in pools:
        for pname, p in pool.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{name}.{pname}'


@pytest.mark.parametrize('stochasticity', ['HWCN', 'CN', None])
def test_gaussian_stochastic_in_train_deterministic_in_eval(stochasticity):
    torch.manual_seed(0)
    model = build('GaussianResNet', depth=18, stochasticity=stochasticity, norm_eval=True)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        model.train()
        a, b = model(x)[-1], model(x)[-1]
        assert torch.equal(a, b) == (stochasticity is None)
        model.eval()
        c, d = model(x)[-1], model(x)[-1]
        assert torch.equal(c, d)


# LIP blocks checkpoint their own residual function; the other families use mmdet's blocks
# (Gaussian: the checkpoint must replay the same noise).
@pytest.mark.parametrize('type_,depth', [('LIPResNet', 50), ('GaussianResNet', 18)])
def test_with_cp_same_outputs_and_gradients(type_, depth):
    torch.manual_seed(0)
    plain = build(type_, depth=depth, norm_eval=True)
    _randomize_zero_inits(plain)
    ckpt = build(type_, depth=depth, norm_eval=True, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, SMALL, SMALL)
    results = []
    for model in (plain, ckpt):
        model.train()
        torch.manual_seed(3)  # Gaussian noise: checkpoint must replay the same draws
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, xi.grad, [p.grad for p in model.parameters()]))
    (o1, g1, p1), (o2, g2, p2) = results
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(g1, g2)
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('type_', RESNETS)
def test_group_norm(type_):
    gn = dict(type='GN', num_groups=16, requires_grad=True)
    model = build(type_, depth=18, norm_cfg=gn).train()
    assert isinstance(model.norm1, torch.nn.GroupNorm) and model.norm1_name == 'gn1'
    if type_ in ('MaxEntResNet', 'GaussianResNet'):
        # GFGP estimators normalise 1x1 global features: they keep BatchNorm.
        assert isinstance(model.layer2[0].pooling.ToHidden[2] if type_ == 'GaussianResNet'
                          else model.layer2[0].pooling.ToParam[2], torch.nn.BatchNorm2d)
    outs = model(torch.randn(2, 3, SIZE, SIZE))
    assert [tuple(o.shape) for o in outs] == _expected_shapes(type_, 18, batch=2)


@pytest.mark.parametrize('type_', RESNETS)
def test_sync_bn_builds(type_):
    model = build(type_, depth=18, norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert isinstance(model.layer1[0].bn1, torch.nn.SyncBatchNorm)
    if type_ == 'MaxEntResNet':
        assert isinstance(model.pool.ToParam[2], torch.nn.SyncBatchNorm)


@pytest.mark.parametrize('type_', RESNETS)
def test_pretrained_init_cfg_loads_every_weight(type_, tmp_path):
    torch.manual_seed(0)
    source = build(type_, depth=18)
    _randomize_zero_inits(source)
    path = tmp_path / 'backbone.pth'
    torch.save(source.state_dict(), path)
    target = build(type_, depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    target.init_weights()
    loaded = target.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded[key]), key


def test_default_init():
    torch.manual_seed(0)
    model = build('LIPResNet', depth=50)
    model.init_weights()
    for m in model.modules():
        if type(m).__name__ == 'LIPBottleneck':
            assert m.bn3.weight.abs().sum() == 0
        if isinstance(m, torch.nn.InstanceNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and m.bias.abs().sum() == 0
    conv = model.layer3[2].conv2  # Kaiming fan_out: std = sqrt(2 / (256 * 9))
    assert abs(float(conv.weight.std()) - (2 / (256 * 9))**0.5) < 0.002
    basic = build('MaxEntResNet', depth=18)
    basic.init_weights()
    assert all(b.bn2.weight.abs().sum() == 0 for layer in (basic.layer1, basic.layer2) for b in layer)


@pytest.mark.parametrize('type_,kwargs,match', [
    ('LIPResNet', dict(logit_module='conv'), 'logit_module'),
    ('LIPResNet', dict(lip_stages=(True, True)), 'lip_stages'),
    ('LIPResNet', dict(logit_width=0), 'logit_width'),
    ('LIPResNet', dict(avg_down=True), 'avg_down'),
    ('LIPResNet', dict(style='caffe'), 'style'),
    ('LIPResNet', dict(strides=(1, 2, 2, 3)), 'stride'),
    ('MaxEntResNet', dict(deep_stem=True), 'deep_stem'),
    ('MaxEntResNet', dict(activation='relu'), 'activation'),
    ('GaussianResNet', dict(stochasticity='HW'), 'stochasticity'),
])
def test_bad_arguments(type_, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(type_, depth=18 if 'strides' not in kwargs else 50, **kwargs)

"""LIP logit modules: key names, average pooling at init, the LIP formula, gradients, errors."""
import pytest
import torch
import torch.nn.functional as F

import lip_det.ops
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.models.common import n_params  # noqa: F401  (imports mmdet or skips)

from lip_det.layers.lip_logits import (BottleneckLIP, BottleneckShared, DenseBottleneckLIP,
                                       ProjectionLIP, SharedLogitSequential, SimplifiedLIP,
                                       build_lip_head)


def _avg(x, k, s, p):
    return F.avg_pool2d(x, k, s, p, count_include_pad=False)


def _lip_expression(x, logit, k, s, p):
    """The LIP authors' expression avg_pool(x·e^l) / avg_pool(e^l)."""
    w = logit.exp()
    return F.avg_pool2d(x * w, k, s, p) / F.avg_pool2d(w, k, s, p)


def test_keys_match_reference_layouts():
    assert sorted(SimplifiedLIP(64).state_dict()) == [
        'logit.bn.bias', 'logit.bn.weight', 'logit.conv.weight']
    assert sorted(SimplifiedLIP(64, names=('conv1', 'bn1')).state_dict()) == [
        'logit.bn1.bias', 'logit.bn1.weight', 'logit.conv1.weight']
    assert SimplifiedLIP(64).state_dict()['logit.conv.weight'].shape == (64, 64, 3, 3)
    trunk = BottleneckShared(256).state_dict()
    assert trunk['logit.conv1.weight'].shape == (128, 256, 1, 1)
    assert trunk['logit.conv2.weight'].shape == (128, 128, 3, 3)
    assert sorted(trunk) == ['logit.bn1.bias', 'logit.bn1.weight', 'logit.bn2.bias',
                             'logit.bn2.weight', 'logit.conv1.weight', 'logit.conv2.weight']
    head = BottleneckLIP(512).state_dict()
    assert head['postprocessing.conv.weight'].shape == (512, 128, 1, 1)
    assert len(head) == 3
    dense = DenseBottleneckLIP(128).state_dict()
    assert dense['logit.conv3.weight'].shape == (128, 128, 1, 1)
    assert dense['logit.bn3.weight'].shape == (128,)
    assert len(dense) == 9
    assert ProjectionLIP(32).state_dict()['logit.conv.weight'].shape == (32, 32, 1, 1)


@pytest.mark.parametrize('make,k,s,p,shared', [
    (lambda: SimplifiedLIP(8), 3, 2, 1, False),
    (lambda: ProjectionLIP(8), 3, 2, 1, False),
    (lambda: BottleneckLIP(8, width=16), 3, 2, 1, True),
    (lambda: DenseBottleneckLIP(8, width=16), 2, 2, 0, False),
])
def test_average_pooling_at_init(make, k, s, p, shared):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(2, 8, 11, 9)
    trunk = torch.randn(2, 16, 11, 9) if shared else None
    # Also after mmengine's init, which Kaiming-fills every conv first.
    for _ in range(2):
        torch.testing.assert_close(layer(x, trunk), _avg(x, k, s, p), rtol=1e-5, atol=1e-6)
        layer.init_weights()


@settings(max_examples=25)
@given(seed=st.integers(0, 2**16), h=st.integers(3, 12), w=st.integers(3, 12),
       std=st.floats(0.01, 3.0))
def test_trained_layer_is_the_lip_expression(seed, h, w, std):
    torch.manual_seed(seed)
    layer = SimplifiedLIP(4).double()
    torch.nn.init.normal_(layer.logit.conv.weight, std=std)
    torch.nn.init.normal_(layer.logit.bn.bias)
    x = torch.randn(2, 4, h, w, dtype=torch.float64)
    logit = layer.logit(x)
    assert float(logit.detach().min()) > 0 and float(logit.detach().max()) < 12.0  # SoftGate range
    torch.testing.assert_close(layer(x), _lip_expression(x, logit, 3, 2, 1))


def test_shared_sequential_feeds_trunk_to_lip_members_only():
    torch.manual_seed(0)
    head = BottleneckLIP(6, width=5)
    torch.nn.init.normal_(head.postprocessing.conv.weight)
    conv = torch.nn.Conv2d(6, 3, 1)
    seq = SharedLogitSequential(head, conv)
    x, trunk = torch.randn(1, 6, 8, 8), torch.randn(1, 5, 8, 8)
    expected = conv(_lip_expression(x, head.postprocessing(trunk), 3, 2, 1))
    torch.testing.assert_close(seq(x, trunk), expected)


def test_gradients_reach_trunk_and_head():
    torch.manual_seed(0)
    trunk, head = BottleneckShared(8, width=8), BottleneckLIP(8, width=8)
    x = torch.randn(2, 8, 9, 9)
    # At init the zero head conv still gets a gradient (so training moves off average pooling).
    head(x, trunk(x)).square().sum().backward()
    assert head.postprocessing.conv.weight.grad.abs().sum() > 0
    torch.nn.init.normal_(head.postprocessing.conv.weight, std=0.1)
    for p in list(trunk.parameters()) + list(head.parameters()):
        p.grad = None
    head(x, trunk(x)).square().sum().backward()
    for name, p in list(trunk.named_parameters()) + list(head.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck_float64():
    torch.manual_seed(0)
    layer = ProjectionLIP(2).double()
    torch.nn.init.normal_(layer.logit.conv.weight)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_bad_arguments():
    with pytest.raises(ValueError, match='logit_module'):
        build_lip_head('conv', 8)
    with pytest.raises(ValueError, match='channels'):
        SimplifiedLIP(0)
    with pytest.raises(ValueError, match='width'):
        BottleneckLIP(8, width=-1)
    with pytest.raises(ValueError, match='logit_kernel'):
        SimplifiedLIP(8, logit_kernel=5)
    with pytest.raises(ValueError, match='shared'):
        BottleneckLIP(8)(torch.randn(1, 8, 4, 4))


def _unfused(layer, x, shared=None):
    """The layer as the reference writes it: IN and SoftGate modules, then LIP on the logit."""
    from lip_det.ops import lip_pool2d
    return lip_pool2d(x, layer.compute_logit(x, shared), layer.kernel_size, layer.stride,
                      layer.padding)


@pytest.mark.parametrize('backend', ['fused', 'reference'])
@pytest.mark.parametrize('depth', [18, 50])
def test_fused_gate_equals_norm_gate_modules(depth, backend, monkeypatch):
    """LIP layers run IN + SoftGate inside the op; outputs and every gradient must equal the
    module-by-module composition (InstanceNorm2d, SoftGate, lip_pool2d)."""
    from lip_det.layers.lip_logits import LIPLayer
    from lip_det.models.backbones import LIPResNet
    if backend == 'fused' and not lip_det.ops.fused_available():
        pytest.skip('extension not built')
    monkeypatch.setenv('LIP_DET_OPS', backend)
    torch.manual_seed(0)
    net = LIPResNet(depth=depth, out_indices=(0, 1, 2, 3), norm_eval=False).double()
    net.init_weights()
    layers = [m for m in net.modules() if isinstance(m, LIPLayer)]
    for m in layers:  # leave the average-pooling start so that the logits matter
        torch.nn.init.normal_(m.zero_conv().weight, std=0.2)
        norm = m.logit_module()[-2]
        torch.nn.init.normal_(norm.weight, 1.0, 0.5)
        torch.nn.init.normal_(norm.bias, 0.0, 0.5)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    results = []
    for fused_gate in (True, False):
        forwards = {m: m.forward for m in layers}
        if not fused_gate:
            for m in layers:
                m.forward = (lambda layer: lambda inp, shared=None: _unfused(layer, inp, shared))(m)
        net.zero_grad()
        outs = net(x)
        sum(o.square().mean() for o in outs).backward()
        results.append(([o.detach() for o in outs],
                        {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}))
        for m, f in forwards.items():
            m.forward = f
    (o1, g1), (o2, g2) = results
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert g1.keys() == g2.keys()
    assert any(k.endswith('postprocessing.bn.weight') for k in g1)
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=1e-8, atol=1e-10, msg=k)


def _saved_bytes(fn) -> int:
    """Bytes of the distinct storages autograd saves while running fn()."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


@pytest.mark.parametrize('layer_cls', ['SimplifiedLIP', 'BottleneckLIP'])
def test_fused_gate_keeps_two_fewer_input_sized_tensors(layer_cls):
    """What the fused gate is for: training memory. The unfused layer also keeps the gate's
    output and the logit (two tensors of x's size); the fused one keeps x, pre and per-plane sums."""
    torch.manual_seed(0)
    c = 16
    x = torch.randn(2, c, 32, 40, requires_grad=True)
    if layer_cls == 'SimplifiedLIP':
        layer, shared = SimplifiedLIP(c), None
    else:
        trunk = BottleneckShared(c, 8)
        layer, shared = BottleneckLIP(c, 8), trunk(x).detach().requires_grad_()
    fused_bytes = _saved_bytes(lambda: layer(x, shared))
    unfused_bytes = _saved_bytes(lambda: _unfused(layer, x, shared))
    x_bytes = x.numel() * x.element_size()
    assert unfused_bytes - fused_bytes >= 2 * x_bytes * 0.99, (fused_bytes, unfused_bytes, x_bytes)


def test_layer_rejects_a_logit_module_without_instance_norm():
    layer = SimplifiedLIP(4)
    layer.logit.bn = torch.nn.BatchNorm2d(4)
    with pytest.raises(TypeError, match='must end with InstanceNorm2d'):
        layer(torch.randn(1, 4, 8, 8))

"""A small model using the fused ops trains under DistributedDataParallel (gloo, 2 processes):
one step on two half-batches equals one single-process step on the full batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .fused_helpers import needs_ext

pytestmark = [needs_ext, pytest.mark.slow]


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.logit = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.gfgp = torch.nn.Conv2d(8, 8, 1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        from lip_det import ops
        h = torch.relu(self.conv(x))
        h = ops.lip_pool2d(h, torch.sigmoid(self.logit(h)) * 12.0, 3, 2, 1)
        h = ops.soft_pool2d(h, 2)
        lam = torch.sigmoid(self.gfgp(h.mean((2, 3), keepdim=True)))
        h = ops.maxent_pool2d(h, lam, 2) + ops.gauss_pool2d(h, lam, 2)
        return self.fc(h.mean((2, 3)))


def _data():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 20, 20, generator=gen), torch.randint(0, 5, (8,), generator=gen)


def _train(model, x, y, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _worker(rank, world, port, result_path):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), LIP_DET_OPS='fused')
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = torch.nn.parallel.DistributedDataParallel(_Net())
        x, y = _data()
        half = x.shape[0] // world
        losses = _train(model, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half], 5)
        state = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
        if rank == 0:
            torch.save({'state': state, 'losses': losses}, result_path)
        gathered = [None] * world
        dist.all_gather_object(gathered, state)
        for other in gathered[1:]:
            for k in state:
                assert torch.equal(other[k], gathered[0][k]), k
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_gloo_two_processes_equals_single_process(tmp_path, monkeypatch):
    result = tmp_path / 'rank0.pt'
    mp.spawn(_worker, args=(2, _free_port(), str(result)), nprocs=2, join=True)
    got = torch.load(result, weights_only=True)
    monkeypatch.setenv('LIP_DET_OPS', 'fused')
    torch.manual_seed(0)
    single = _Net()
    x, y = _data()
    # DDP averages the two half-batch gradients: the full-batch mean loss has the same gradient.
    losses = _train(single, x, y, 5)
    assert got['losses'][-1] < got['losses'][0]
    assert losses[-1] < losses[0]
    for k, v in single.state_dict().items():
        torch.testing.assert_close(got['state'][k], v, rtol=1e-4, atol=1e-5)

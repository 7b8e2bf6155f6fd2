"""Model, data and training loop of test_fused_ddp.py; run as a script under torchrun it is one
DDP rank (gloo, CPU) that saves its final state and losses to argv[1] % rank."""
from __future__ import annotations

import datetime
import faulthandler
import os
import sys
from typing import List, Tuple

import torch

STEPS = 5


class Net(torch.nn.Module):
    """Every fused op family in one small classifier."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.logit = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.gfgp = torch.nn.Conv2d(8, 8, 1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from lip_det import ops
        h = torch.relu(self.conv(x))
        h = ops.lip_pool2d(h, torch.sigmoid(self.logit(h)) * 12.0, 3, 2, 1)
        h = ops.soft_pool2d(h, 2)
        lam = torch.sigmoid(self.gfgp(h.mean((2, 3), keepdim=True)))
        h = ops.maxent_pool2d(h, lam, 2) + ops.gauss_pool2d(h, lam, 2)
        return self.fc(h.mean((2, 3)))


def data() -> Tuple[torch.Tensor, torch.Tensor]:
    """The full batch: 8 images, 8 labels."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 20, 20, generator=gen), torch.randint(0, 5, (8,), generator=gen)


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = STEPS) -> List[float]:
    """Plain SGD steps; the loss of each."""
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main(result_pattern: str) -> None:
    """One rank: train on this rank's half of the batch, save what it ended with."""
    import torch.distributed as dist
    # A hang ends this rank with its stacks on stderr instead of running until CI's limit.
    faulthandler.dump_traceback_later(120, exit=True)
    torch.set_num_threads(1)
    dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(Net())
    x, y = data()
    half = x.shape[0] // world
    part = slice(rank * half, (rank + 1) * half)
    losses = train(model, x[part], y[part])
    state = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    torch.save({'state': state, 'losses': losses}, result_pattern % rank)
    # The replicas are compared by the test, not with a collective here: torch 2.13 can
    # deadlock tearing down gloo after all_gather_object (its worker thread needs the GIL to
    # free the gathered tensors while the main thread, holding it, joins that thread in the
    # process group's destructor; pytorch/pytorch#56297). Only DDP's own C++ buckets are in
    # flight at this point, and the model goes before the process group.
    del model
    dist.destroy_process_group()


if __name__ == '__main__':
    os.environ['LIP_DET_OPS'] = 'fused'
    main(sys.argv[1])

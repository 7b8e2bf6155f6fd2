"""A small model using the fused ops trains under DistributedDataParallel (gloo, 2 processes
started by torchrun): steps on two half-batches equal single-process steps on the full batch."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from .ddp_worker import Net, data, train
from .fused_helpers import needs_ext

pytestmark = [needs_ext, pytest.mark.slow]

HERE = osp.dirname(osp.abspath(__file__))


def _run_two_ranks(result_pattern: str, log: str, port: int, timeout: float = 240) -> None:
    """torchrun ddp_worker.py on 2 CPU processes; fail (never hang) with their output."""
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='', PYTHONUNBUFFERED='1',
               # Loopback only: gloo otherwise uses the address the hostname resolves to.
               GLOO_SOCKET_IFNAME='lo')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2',
           '--master_addr=127.0.0.1', f'--master_port={port}',
           osp.join(HERE, 'ddp_worker.py'), result_pattern]
    # Output to a file, not a pipe: a stuck rank (torchrun starts each in its own session)
    # cannot then block the reader.
    with open(log, 'w') as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()  # torchrun passes SIGTERM on to its ranks' process groups
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    with open(log) as f:
        out = f.read()[-8000:]
    if proc.returncode != 0:
        pytest.fail(f'torchrun exited {proc.returncode} (timeout {timeout} s)\n{out}')


def test_ddp_gloo_two_processes_equals_single_process(tmp_path, monkeypatch, free_port):
    pattern = str(tmp_path / 'rank%d.pt')
    _run_two_ranks(pattern, str(tmp_path / 'torchrun.log'), free_port)
    ranks = [torch.load(pattern % r, weights_only=True) for r in (0, 1)]
    # DDP kept the replicas identical although each rank saw different images.
    assert ranks[0]['losses'] != ranks[1]['losses']
    for k, v in ranks[0]['state'].items():
        assert torch.equal(v, ranks[1]['state'][k]), k
    monkeypatch.setenv('LIP_DET_OPS', 'fused')
    torch.manual_seed(0)
    single = Net()
    x, y = data()
    # DDP averages the two half-batch gradients: the full-batch mean loss has the same gradient.
    losses = train(single, x, y)
    assert ranks[0]['losses'][-1] < ranks[0]['losses'][0]
    assert losses[-1] < losses[0]
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ranks[0]['state'][k], v, rtol=1e-4, atol=1e-5)

"""Make mmengine's distributed launch work on machines without CUDA.

mmengine 0.10.7 assumes GPUs once ``--launcher`` is not ``none``: ``init_dist`` calls
``torch.cuda.set_device(LOCAL_RANK)`` before creating the process group, the default
``dist_cfg`` backend of mmdet's runtime is ``nccl``, and the DDP wrapper is built with
``device_ids=[LOCAL_RANK]``, which DistributedDataParallel rejects for CPU modules. On a
CPU-only machine we therefore create the gloo process group ourselves (mmengine then skips
its own ``init_dist``) and build the wrapper with ``device_ids=None``. Nothing changes when
CUDA is available.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_launch(cfg: Config, launcher: str) -> Config:
    """Set ``cfg.launcher`` and, without CUDA, switch a distributed run to gloo on the CPU."""
    if launcher not in ('none', 'pytorch', 'slurm', 'mpi'):
        raise ValueError(f"launcher must be one of ('none', 'pytorch', 'slurm', 'mpi'), "
                         f'got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    # An explicit None wins over the runner's default device_ids=[LOCAL_RANK].
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'pytorch' and not dist.is_initialized():
        # torchrun exports RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
        missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
                   if k not in os.environ]
        if missing:
            raise RuntimeError(f'--launcher pytorch needs {missing} in the environment: '
                               'start the tool with torchrun (tools/dist_train.sh)')
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if 'timeout' in kwargs:
            import datetime
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    return cfg

"""Hooks that the e2e tests load into tool subprocesses (``custom_imports``) to observe runs."""
import os

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class ResumeProbeHook(Hook):
    """Save the runner's state as training (re)starts, when it starts from a resumed iteration."""

    priority = 'LOWEST'

    def __init__(self, out: str) -> None:
        self.out = out

    def before_train(self, runner) -> None:
        if runner.iter == 0:
            return
        torch.save(dict(iter=runner.iter, epoch=runner.epoch,
                        state_dict=_unwrap(runner.model).state_dict(),
                        optimizer=runner.optim_wrapper.state_dict(),
                        param_schedulers=[s.state_dict() for s in runner.param_schedulers]),
                   self.out)


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Save every rank's final weights, world size and iteration count after training."""

    priority = 'LOWEST'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def after_train(self, runner) -> None:
        torch.save(dict(world_size=runner.world_size, iter=runner.iter,
                        backend=torch.distributed.get_backend()
                        if torch.distributed.is_initialized() else None,
                        params={k: v.detach().clone()
                                for k, v in _unwrap(runner.model).named_parameters()},
                        state_dict=_unwrap(runner.model).state_dict()),
                   os.path.join(self.out_dir, f'rank{runner.rank}.pth'))

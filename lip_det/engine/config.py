"""Config loading shared by tools/train.py and tools/test.py (mmdet's precedence rules)."""
from __future__ import annotations

import os.path as osp
from typing import Optional

from mmengine.config import Config


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Load ``path``, merge ``--cfg-options``, and set work_dir: CLI > config > config name."""
    cfg = Config.fromfile(path)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg

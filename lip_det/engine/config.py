"""Config loading shared by tools/train.py and tools/test.py (mmdet's precedence rules)."""
from __future__ import annotations

import argparse
import os.path as osp
from typing import Any, Optional, Sequence, Union

from mmengine.config import Config, DictAction

__all__ = ['ConfigError', 'CfgOptionsAction', 'load_config']


class ConfigError(ValueError):
    """A config file, ``--cfg-options`` item or config value the tools cannot use (says why)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f'{type(exc).__name__}: {text.splitlines()[0]}' if text else type(exc).__name__


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that rejects an item not of the form KEY=VALUE by name.

    ``DictAction`` unpacks ``item.split('=', 1)`` into two names, so ``--cfg-options foo`` ends
    in "not enough values to unpack"; this reports the item and the accepted form instead.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Union[str, Sequence[Any], None], option_string: Optional[str] = None
                 ) -> None:
        """Check every item, then let DictAction parse them."""
        for item in [values] if isinstance(values, str) else values or []:
            key, sep, value = item.partition('=')
            if not sep or not key.strip():
                raise argparse.ArgumentError(
                    self, f'{item!r} is not KEY=VALUE (e.g. train_cfg.max_epochs=2 or '
                    'model.backbone.init_cfg.checkpoint=PATH)')
            try:
                self._parse_iterable(value)
            except Exception as exc:  # noqa: BLE001 - DictAction asserts on unbalanced brackets
                raise argparse.ArgumentError(
                    self, f'{item!r}: cannot parse the value ({_first_line(exc)}); lists are '
                    'V1,V2 or [V1,V2], tuples (V1,V2)') from None
        super().__call__(parser, namespace, values, option_string)


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Load ``path``, merge ``--cfg-options``, and set work_dir: CLI > config > config name."""
    if not osp.isfile(path):
        raise ConfigError(f'config {path!r} does not exist or is not a file')
    try:
        cfg = Config.fromfile(path)
    except Exception as exc:  # noqa: BLE001 - a broken config (syntax, base file, custom import)
        raise ConfigError(f'config {path!r} cannot be loaded: {_first_line(exc)}') from None
    if cfg_options is not None:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as exc:  # noqa: BLE001 - e.g. indexing into a value that is no list
            raise ConfigError(f'--cfg-options {cfg_options!r} cannot be applied to {path!r}: '
                              f'{_first_line(exc)}') from None
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg

"""Checks the train/test tools run before building a Runner, and their one-line error reports.

A Runner logs its environment and the whole config (hundreds of lines) before it builds the
model, and loads ``--resume``/``load_from`` only after building the data loaders, so a typo'd
type name or an empty checkpoint file used to end a long log in a traceback. These checks find
such plain user errors first and report each in one line naming the value and what is accepted.
"""
from __future__ import annotations

import contextlib
import copy
import difflib
import re
import sys
from typing import Any, Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config

from ..checkpoints.safe_load import CheckpointError, check_checkpoint_file
from .config import ConfigError

__all__ = ['check_model_config', 'check_load_from', 'lip_det_backbones', 'report_user_errors']

# mmengine's build_from_cfg: "X is not in the mmdet::model registry. Please check whether ..."
_NOT_REGISTERED = re.compile(r'^(?P<type>\S+) is not in the (?P<scope>[\w.]+)::(?P<name>[\w ]+) '
                             r'registry')

_MMDET_LISTING = ('python -c "from mmdet.registry import MODELS; '
                  'print(sorted(MODELS.module_dict))"')


def lip_det_backbones() -> List[str]:
    """Names of the backbones lip-det registers in mmdet's MODELS."""
    from mmdet.registry import MODELS

    import lip_det.models  # noqa: F401 - registers them (else done when mmdet.models loads)
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if getattr(cls, '__module__', '').startswith('lip_det.models.backbones'))


def _type_paths(node: Any, name: str, path: str) -> Iterator[str]:
    """Config paths (e.g. 'model.backbone.type') whose type is ``name``."""
    if isinstance(node, dict):
        if node.get('type') == name:
            yield f'{path}.type'
        for key, value in node.items():
            yield from _type_paths(value, name, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _type_paths(value, name, f'{path}[{i}]')


def _registered_names(scope: str, registry_name: str) -> List[str]:
    import mmengine.registry as registries
    for root in vars(registries).values():
        if isinstance(root, registries.Registry) and root.name == registry_name:
            child = root._search_child(scope) or root
            return sorted(set(child.module_dict) | set(root.module_dict))
    return []


def _unregistered(exc: KeyError) -> Optional[Tuple[str, str, str]]:
    match = _NOT_REGISTERED.match(str(exc.args[0]) if exc.args else '')
    return (match['type'], match['scope'], match['name']) if match else None


def _unknown_type_error(model_cfg: Any, type_name: str, scope: str, registry_name: str
                        ) -> ConfigError:
    where = next(_type_paths(model_cfg, type_name, 'model'), 'a type in model')
    close = difflib.get_close_matches(type_name, _registered_names(scope, registry_name), n=3)
    parts = [f'{where} = {type_name!r} is not registered in the {scope}::{registry_name} registry']
    if close:
        parts.append(f'closest registered names: {", ".join(map(repr, close))}')
    if 'backbone' in where:
        parts.append(f"lip-det's backbones are {', '.join(lip_det_backbones())}; mmdet's own "
                     f'(ResNet, ResNeXt, RegNet, ...) are listed by {_MMDET_LISTING}')
    else:
        parts.append(f'registered types are listed by {_MMDET_LISTING}')
    return ConfigError('; '.join(parts))


def check_model_config(cfg: Config) -> None:
    """Build ``cfg.model`` on the meta device: an unknown type is a ConfigError, not a log.

    Building on the meta device allocates nothing and initialises nothing. Only "not in the
    registry" errors are reported here; any other failure is left to the Runner's real build,
    which reports it with its full traceback.
    """
    from mmengine.registry import MODELS, DefaultScope
    model_cfg = cfg.get('model')
    if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get('type'), str):
        raise ConfigError("the config defines no model = dict(type='...', ...)")
    scope = cfg.get('default_scope', 'mmdet') or 'mmdet'
    try:
        with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
            MODELS.build(copy.deepcopy(model_cfg))
    except KeyError as exc:
        found = _unregistered(exc)
        if found is not None:
            raise _unknown_type_error(model_cfg, *found) from None
    except Exception:  # noqa: BLE001 - not a registry error: the Runner's real build reports it
        pass


def check_load_from(cfg: Config, what: str) -> None:
    """Check that a local ``cfg.load_from`` is a non-empty checkpoint file (URLs: not checked)."""
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and '://' not in load_from:
        check_checkpoint_file(load_from, what)


@contextlib.contextmanager
def report_user_errors(prog: str) -> Iterator[None]:
    """Print a ConfigError (exit 2) or CheckpointError (exit 1) as one line, without a traceback."""
    try:
        yield
    except ConfigError as exc:
        print(f'{prog}: error: {exc}', file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except CheckpointError as exc:
        print(f'{prog}: error: {exc}', file=sys.stderr, flush=True)
        raise SystemExit(1) from None

"""lip-det's glue to MMDetection and MMEngine: registration in mmdet's MODELS, checkpoint loader.

``import lip_det`` (hence also ``import lip_det.ops``) calls ``install()``, which imports no
OpenMMLab module itself. Each piece of glue runs once, as soon as the module it extends is loaded:
at once if it already is, otherwise right after that module finishes loading, from a post-import
hook on ``sys.meta_path``. So the order of ``import lip_det`` and of mmdet's imports does not
matter: ``custom_imports=['lip_det']`` after lip_det was imported torch-only, ``import lip_det.ops``
before ``from mmdet.apis import init_detector``, and ``tools/train.py`` all end up registered.

- ``mmdet.registry`` loaded: every layer of the pooling table (``lip_det.layers.POOLING_LAYERS``,
  including those registered later with ``@register_pooling``) and ``SoftGate`` are registered
  in mmdet's MODELS. This touches only the registry object.
- ``mmdet.models`` loaded: ``lip_det.models`` is imported, whose backbones register themselves.
  Not at ``mmdet.registry``: that module first loads from inside other mmdet imports (with
  mmdet 3.3, ``import mmdet.models`` reaches it from ``mmdet/models/backbones/csp_darknet.py``,
  ``import mmdet.apis`` from ``mmdet.evaluation``), and importing the backbones, which subclass
  ``mmdet.models.backbones.resnet``, from there would import mmdet's models out of their own
  order, inside half-initialised packages: it works with mmdet 3.3 but rests on mmdet's internal
  import graph. Nothing is missed by waiting: mmdet's MODELS imports ``mmdet.models`` (its
  ``locations``) before any ``get``/``build`` looks a type up, so lip-det's backbones appear
  exactly when mmdet's own do (reading ``MODELS.module_dict`` directly sees neither before).
- ``mmengine.runner.checkpoint`` loaded: ``lip_det.compat.install_checkpoint_loader`` replaces
  its loader for local files. Every checkpoint load (``Runner``, ``load_checkpoint``, the
  ``Pretrained`` initialiser) goes through that module, so it is hooked rather than mmdet.

An error in the glue propagates from the import that triggered it (e.g. mmdet's lazy import of
``mmdet.models`` inside ``MODELS.build``): swallowing it would surface later as a misleading
"LIPResNet is not in the mmdet::model registry".
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ['install', 'when_imported', 'register_layers']

Callback = Callable[[ModuleType], None]

_lock = threading.RLock()
# Module name -> callbacks to run once that module has loaded.
_pending: Dict[str, List[Callback]] = {}
_installed = False


class _PostImportLoader(importlib.abc.Loader):
    """Delegates to a module's real loader, then runs the callbacks waiting for that module."""

    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        """The real loader's module (None: the default one)."""
        create = getattr(self._loader, 'create_module', None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        """Execute the module with the real loader, then run its callbacks."""
        # Put the real loader back first, so that the module looks as if loaded without the hook
        # (inspect, importlib.resources and reload use __loader__/__spec__.loader).
        module.__loader__ = self._loader
        if getattr(module, '__spec__', None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        with _lock:
            callbacks = _pending.pop(self._name, [])
        for callback in callbacks:
            callback(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds no module itself: wraps the loader of a module that callbacks wait for."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]],
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        """The spec the other finders give, with a loader that runs the callbacks afterwards."""
        if fullname not in _pending:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        # A namespace package (no loader) has no code to wait for; mmdet's modules all have one.
        if spec.loader is not None and not isinstance(spec.loader, _PostImportLoader):
            spec.loader = _PostImportLoader(spec.loader, fullname)
        return spec


def when_imported(name: str, callback: Callback) -> None:
    """Run ``callback(module)`` now if module ``name`` is loaded, else right after it loads."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _pending.setdefault(name, []).append(callback)
            if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
                # First, so that it sees the import before the finder that would load it.
                sys.meta_path.insert(0, _PostImportFinder())
            return
    callback(module)


def register_layers(registry: object) -> None:
    """Register ``SoftGate`` and every pooling layer, now and future, in an mmengine registry."""
    from .layers import SoftGate
    from .layers.pooling import on_register_pooling

    def register(cls: type) -> None:
        # Skip a class already there (a second install); another class of that name raises
        # mmengine's KeyError, as registering it did before lip-det had this plugin.
        if registry.module_dict.get(cls.__name__) is not cls:
            registry.register_module(module=cls)

    register(SoftGate)
    on_register_pooling(register)


def _on_mmdet_registry(module: ModuleType) -> None:
    register_layers(module.MODELS)


def _on_mmdet_models(module: ModuleType) -> None:
    importlib.import_module('lip_det.models')  # the backbones register themselves


def _on_mmengine_checkpoint(module: ModuleType) -> None:
    from .compat import install_checkpoint_loader
    install_checkpoint_loader()


def install() -> None:
    """Register lip-det in mmdet and mmengine where they are loaded, else once they load."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    when_imported('mmengine.runner.checkpoint', _on_mmengine_checkpoint)
    when_imported('mmdet.registry', _on_mmdet_registry)
    when_imported('mmdet.models', _on_mmdet_models)

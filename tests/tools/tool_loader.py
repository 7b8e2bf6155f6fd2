"""Import a script from tools/ as a module, so tests can call its main() in-process."""
from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tool_path(name: str) -> str:
    """Absolute path of tools/<name>.py."""
    return os.path.join(REPO, 'tools', f'{name}.py')


def load_tool(name: str) -> ModuleType:
    """tools/<name>.py loaded as a fresh module."""
    spec = importlib.util.spec_from_file_location(f'lip_det_tool_{name}', tool_path(name))
    module = importlib.util.module_from_spec(spec)
    # registered before it runs: dataclasses resolve string annotations through sys.modules
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module

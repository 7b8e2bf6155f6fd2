"""Run-time glue for the train/test tools: config loading and CPU-only distributed launch."""
from .config import load_config
from .launch import prepare_launch

__all__ = ['load_config', 'prepare_launch']

"""Run-time glue for the train/test tools: config loading, pre-run checks, CPU-only launch."""
from .config import CfgOptionsAction, ConfigError, load_config
from .launch import prepare_launch
from .preflight import check_load_from, check_model_config, lip_det_backbones, report_user_errors

__all__ = ['CfgOptionsAction', 'ConfigError', 'load_config', 'prepare_launch', 'check_load_from',
           'check_model_config', 'lip_det_backbones', 'report_user_errors']

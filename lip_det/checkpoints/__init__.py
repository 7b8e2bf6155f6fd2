"""Reference checkpoint formats: safe loading, detection, conversion to backbone checkpoints."""
from .convert import ConversionResult, convert_checkpoint, convert_state_dict, map_keys
from .formats import FORMATS, detect_arch, detect_format, resolve_format
from .output import OutputPathError, OutputWriteError, atomic_torch_save, check_output_path
from .safe_load import (CheckpointError, extract_state_dict, load_checkpoint_file,
                        load_result_pickle, sha256_file)

__all__ = [
    'CheckpointError', 'ConversionResult', 'FORMATS', 'OutputPathError', 'OutputWriteError',
    'atomic_torch_save', 'check_output_path', 'convert_checkpoint', 'convert_state_dict',
    'detect_arch', 'detect_format', 'extract_state_dict', 'load_checkpoint_file',
    'load_result_pickle', 'map_keys', 'resolve_format', 'sha256_file'
]

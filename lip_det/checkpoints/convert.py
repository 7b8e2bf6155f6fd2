"""Convert an ImageNet classification checkpoint into a detection-backbone checkpoint.

Pipeline: safe load -> unwrap/strip ``module.`` -> detect (or check) format and architecture ->
map keys with the format's rule in ``formats.FORMATS`` (drop the classifier's prefixes; for an
mmpretrain classifier also strip ``backbone.``) -> compare with the target backbone's own
``state_dict()`` -> write ``{'state_dict', 'meta'}`` atomically. The output holds only tensors
and plain Python values, so mmengine's ``Pretrained`` init (and any
``torch.load(weights_only=True)``) reads it.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from .formats import FORMATS, backbone_config, detect_arch, detect_format, resolve_format
from .output import atomic_torch_save, check_output_path
from .safe_load import CheckpointError, extract_state_dict, load_checkpoint_file, sha256_file

__all__ = ['ConversionResult', 'count_params', 'map_keys', 'backbone_shapes', 'convert_state_dict',
           'convert_checkpoint', 'config_backbone', 'CONVERTED_FORMAT_VERSION']

# Bumped if the layout of the written file ever changes.
CONVERTED_FORMAT_VERSION = 1

# Buffers of norm layers: they are not parameters (the papers' parameter counts exclude them).
_BUFFER = re.compile(r'(^|\.)(running_mean|running_var|num_batches_tracked)$')

# SoftPool adds no parameters: these formats share every key, only the wrapper tells them apart.
_SHARED_KEYS = frozenset({'softpool', 'torchvision'})

# BN update counters: absent from checkpoints saved before PyTorch 0.4.1 and never used by a
# frozen/eval-mode BN, so their absence is reported but does not fail strict mode.
_TOLERATED_MISSING = re.compile(r'(^|\.)num_batches_tracked$')


@dataclass
class ConversionResult:
    """What a conversion read, wrote, dropped and could not place."""

    src_format: str
    format_reason: str
    arch: str
    backbone: Dict[str, Any]
    num_source_tensors: int
    num_source_params: int
    state_dict: Dict[str, torch.Tensor]
    dropped: List[str] = field(default_factory=list)
    renamed: Dict[str, str] = field(default_factory=dict)
    unmapped: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    tolerated_missing: List[str] = field(default_factory=list)
    shape_mismatch: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def num_params(self) -> int:
        """Number of parameters written (norm-layer running statistics not counted)."""
        return count_params(self.state_dict)

    @property
    def ok(self) -> bool:
        """True when every source tensor found a place and every backbone tensor is filled."""
        return not (self.unmapped or self.missing or self.shape_mismatch)

    def problems(self) -> List[str]:
        """One line per strict-mode violation."""
        lines = []
        if self.unmapped:
            lines.append(f'{len(self.unmapped)} source tensor(s) have no place in '
                         f'{_cfg_str(self.backbone)}: {_head(self.unmapped)}')
        if self.missing:
            lines.append(f'{len(self.missing)} backbone tensor(s) are missing from the source: '
                         f'{_head(self.missing)}')
        for key, got, want in self.shape_mismatch[:5]:
            lines.append(f'shape mismatch for {key}: checkpoint {list(got)} vs backbone {list(want)}')
        if len(self.shape_mismatch) > 5:
            lines.append(f'... and {len(self.shape_mismatch) - 5} more shape mismatches')
        return lines

    def summary(self) -> str:
        """Multi-line human-readable report."""
        rows = [
            ('format', f'{self.src_format} ({self.format_reason})'),
            ('architecture', f'{self.arch} -> {_cfg_str(self.backbone)}'),
            ('tensors', f'{self.num_source_tensors} read, {len(self.state_dict)} written, '
                        f'{len(self.dropped)} dropped, {len(self.renamed)} renamed'),
            ('parameters', f'{self.num_source_params:,} read, {self.num_params:,} written '
                           '(BN running statistics not counted)'),
            ('dropped', _head(self.dropped) or 'none'),
            ('unmapped', _head(self.unmapped) or 'none'),
            ('missing', _head(self.missing) or 'none'),
        ]
        if self.tolerated_missing:
            rows.append(('tolerated', f'{len(self.tolerated_missing)} num_batches_tracked buffer(s) '
                                      'absent (BN update counters, unused by the detector)'))
        if self.shape_mismatch:
            rows.append(('shape errors', '; '.join(f'{k} {list(a)} vs {list(b)}'
                                                   for k, a, b in self.shape_mismatch[:3])))
        rows += [('note', n) for n in self.notes]
        width = max(len(r[0]) for r in rows)
        return '\n'.join(f'{name:<{width}} : {value}' for name, value in rows)


def count_params(state_dict: Mapping[str, torch.Tensor]) -> int:
    """Parameters in a state_dict: every element except norm-layer running statistics."""
    return sum(v.numel() for k, v in state_dict.items() if not _BUFFER.search(k))


def _head(keys: List[str], n: int = 6) -> str:
    if not keys:
        return ''
    shown = ', '.join(keys[:n])
    return shown + (f', ... ({len(keys)} in total)' if len(keys) > n else '')


def _cfg_str(cfg: Mapping[str, Any]) -> str:
    args = ', '.join(f'{k}={v!r}' for k, v in cfg.items() if k != 'type')
    return f"{cfg['type']}({args})"


def map_keys(fmt: str, state_dict: Mapping[str, torch.Tensor]
             ) -> Tuple[Dict[str, torch.Tensor], List[str], Dict[str, str]]:
    """Apply the format's key rule: returns (mapped state_dict, dropped keys, renames).

    A key that starts with one of the format's ``drop_prefixes`` is dropped; one that starts with
    its ``strip_prefix`` loses that prefix (and is listed in the renames); any other key is kept
    as it is. Two source keys landing on one name is an error.
    """
    spec = FORMATS[resolve_format(fmt)]
    strip = spec.strip_prefix
    mapped: Dict[str, torch.Tensor] = {}
    dropped: List[str] = []
    renamed: Dict[str, str] = {}
    for key, value in state_dict.items():
        if key.startswith(spec.drop_prefixes):
            dropped.append(key)
            continue
        new = key[len(strip):] if strip and key.startswith(strip) else key
        if new in mapped:
            raise CheckpointError(f'the key rule of {spec.name!r} maps two source keys onto '
                                  f'{new!r}')
        if new != key:
            renamed[key] = new
        mapped[new] = value
    return mapped, dropped, renamed


_SHAPE_CACHE: Dict[Tuple[Tuple[str, Any], ...], Dict[str, Tuple[int, ...]]] = {}


def backbone_shapes(cfg: Mapping[str, Any]) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of the state_dict of the backbone built from cfg (built on the meta device)."""
    cache_key = tuple(sorted((k, repr(v)) for k, v in cfg.items()))
    if cache_key not in _SHAPE_CACHE:
        from mmdet.utils import register_all_modules

        from lip_det.registry import build_mmdet_model  # importing lip_det registers the backbones
        register_all_modules(init_default_scope=False)
        try:
            with torch.device('meta'):  # shapes only: skip allocating and initialising weights
                model = build_mmdet_model(cfg)
        except Exception:  # noqa: BLE001 - some modules refuse meta tensors; retry on the CPU
            try:
                model = build_mmdet_model(cfg)
            except Exception as exc:  # noqa: BLE001 - e.g. a depth the backbone does not offer
                raise CheckpointError(f'no backbone for this checkpoint: {_cfg_str(cfg)} cannot be '
                                      f'built ({type(exc).__name__}: {exc})') from None
        _SHAPE_CACHE[cache_key] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return dict(_SHAPE_CACHE[cache_key])


def _parse_arch(arch: str, family: str) -> str:
    m = re.fullmatch(r'(?:(resnet|densenet))?(\d+)', arch.lower().replace('-', '').replace('_', ''))
    if not m or (m.group(1) and m.group(1) != family):
        raise ValueError(f"arch must be a {family} depth such as '{family}50' or '50', got {arch!r}")
    return f'{family}{m.group(2)}'


# Backbone arguments a detector sets for itself (what to output, freezing, init, memory): they
# change no tensor, so the backbone recorded for an mmpretrain checkpoint leaves them out.
_NON_STRUCTURAL_ARGS = frozenset({'init_cfg', 'pretrained', 'out_indices', 'frozen_stages',
                                  'norm_eval', 'with_cp', 'drop_rate', 'drop_path_rate'})
# The backbone type a family of reference keys implies (plain ResNet keys: see _SHARED_KEYS).
_MMPRETRAIN_KEY_TYPES = {spec.name: 'ResNet' if spec.name in _SHARED_KEYS else spec.backbone
                         for spec in FORMATS.values() if spec.backbone is not None}
_MAX_CFG_TEXT = 1 << 20


class _UnsafeConfig(ValueError):
    """A config text that is not plain literal data."""


def _literal(node: ast.AST) -> Any:
    """The value of a literal expression, where ``dict(k=v, ...)`` counts as a literal."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict'
            and not node.args and all(kw.arg is not None for kw in node.keywords)):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    raise _UnsafeConfig(type(node).__name__)


def config_backbone(meta: Any) -> Tuple[Optional[Dict[str, Any]], str]:
    """(model.backbone of a Runner checkpoint's ``meta['cfg']``, or None; why not).

    mmengine's Runner stores the config as Python text (``Config.pretty_text``). It is never
    executed: only a top-level ``model = dict(...)`` made of literals is read, with ``ast``.
    """
    text = meta.get('cfg') if isinstance(meta, Mapping) else None
    if isinstance(text, Mapping):
        model = text.get('model')
    elif isinstance(text, str):
        if len(text) > _MAX_CFG_TEXT:
            return None, f"meta['cfg'] is {len(text)} characters, more than any config"
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError) as exc:
            return None, f"meta['cfg'] is not Python config text ({type(exc).__name__})"
        model = None
        for stmt in tree.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == 'model'):
                try:
                    model = _literal(stmt.value)
                except _UnsafeConfig as exc:
                    return None, f"meta['cfg'] model is not plain literal data ({exc})"
    else:
        return None, "no config in the checkpoint's meta"
    backbone = model.get('backbone') if isinstance(model, Mapping) else None
    if not isinstance(backbone, Mapping) or not isinstance(backbone.get('type'), str):
        return None, "meta['cfg'] has no model.backbone with a type"
    return dict(backbone), ''


def _mmpretrain_backbone(mapped: Mapping[str, torch.Tensor], wrapper: Mapping[str, Any],
                         arch: Optional[str], backbone_type: Optional[str], strict: bool,
                         notes: List[str]) -> Tuple[Dict[str, Any], str]:
    """(backbone config, arch name) of a classifier: from its config meta, else its keys."""
    try:
        inner, _ = detect_format(mapped, {})
    except CheckpointError:
        inner = None
    key_type = _MMPRETRAIN_KEY_TYPES.get(inner) if inner else None
    from_meta, why_not = config_backbone(wrapper.get('meta'))
    if from_meta is not None:
        cfg = {k: v for k, v in from_meta.items() if k not in _NON_STRUCTURAL_ARGS}
        kind = cfg['type']
        problems = []
        if backbone_type is not None and backbone_type != kind:
            problems.append(f'--backbone-type {backbone_type} given, but the checkpoint\'s '
                            f'config says {kind}')
        plain = inner in _SHARED_KEYS and kind in ('ResNet', 'SoftPoolResNet')
        if key_type is not None and key_type != kind and not plain:
            problems.append(f"the checkpoint's config says {kind}, but its backbone keys look "
                            f'like {key_type} ({inner} keys)')
        depth = cfg.get('depth')
        family = 'densenet' if 'DenseNet' in kind else 'resnet'
        found_arch = f'{family}{depth}' if isinstance(depth, int) else kind
        if arch is not None and _parse_arch(arch, family) != found_arch:
            problems.append(f'--arch {_parse_arch(arch, family)} given, but the checkpoint\'s '
                            f'config says {found_arch}')
        for problem in problems:
            if strict:
                raise CheckpointError(problem)
            notes.append(problem)
        notes.append("backbone type and arguments from the checkpoint's config meta")
        return cfg, found_arch
    kind = backbone_type or key_type
    if kind is None:
        raise CheckpointError(f'{why_not}, and the backbone keys match no known backbone: '
                              'pass --backbone-type and --arch')
    family = 'densenet' if 'DenseNet' in kind else 'resnet'
    try:
        found_arch = detect_arch(mapped, family)
    except CheckpointError:
        if arch is None:
            raise
        found_arch = None
    if arch is not None:
        wanted = _parse_arch(arch, family)
        if found_arch is not None and found_arch != wanted:
            raise CheckpointError(f'--arch {wanted} given, but the checkpoint is a {found_arch}')
        found_arch = wanted
    notes.append(f'{why_not}: backbone {kind} from '
                 + ('--backbone-type' if backbone_type else 'the keys')
                 + ('; plain ResNet keys could also be SoftPoolResNet (--backbone-type)'
                    if backbone_type is None and inner in _SHARED_KEYS else ''))
    return dict(type=kind, depth=int(re.sub(r'\D', '', found_arch))), found_arch


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], wrapper: Mapping[str, Any],
                       src_format: Optional[str] = None, arch: Optional[str] = None,
                       strict: bool = True, backbone_type: Optional[str] = None
                       ) -> ConversionResult:
    """Detect/check format and arch, map keys and compare them with the target backbone."""
    notes: List[str] = []
    if backbone_type is not None and src_format is not None and \
            FORMATS[resolve_format(src_format)].family != 'classifier':
        raise ValueError(f'backbone_type applies to --src-format mmpretrain only; '
                         f'{resolve_format(src_format)} checkpoints always convert to '
                         + backbone_config(src_format, '0')['type'])
    detected, reason = None, ''
    try:
        detected, reason = detect_format(state_dict, wrapper)
    except CheckpointError:
        if src_format is None:
            raise
    if src_format is None:
        fmt = detected
        if fmt in _SHARED_KEYS:
            reason += '; pass --src-format softpool or torchvision to choose'
    else:
        fmt = resolve_format(src_format)
        interchangeable = {fmt, detected} <= _SHARED_KEYS
        if detected is not None and detected != fmt and not interchangeable:
            msg = (f'--src-format {fmt} given, but the keys look like {detected!r} ({reason}); '
                   'omit --src-format to convert as the detected format'
                   + ('' if not strict else ', or pass --no-strict to convert as '
                      f'{fmt} anyway'))
            if strict:
                raise CheckpointError(msg)
            notes.append(msg)
        reason = 'given with --src-format' + (f'; detected {detected}' if detected else '')
    spec = FORMATS[fmt]
    if backbone_type is not None and spec.family != 'classifier':
        raise ValueError(f'backbone_type applies to --src-format mmpretrain only; {fmt} '
                         'checkpoints always convert to ' + backbone_config(fmt, '0')['type'])
    if spec.family == 'classifier':
        mapped, dropped, renamed = map_keys(fmt, state_dict)
        cfg, found_arch = _mmpretrain_backbone(mapped, wrapper, arch, backbone_type, strict, notes)
        return _compare(fmt, reason, found_arch, cfg, state_dict, mapped, dropped, renamed,
                        notes, strict)

    try:
        found_arch = detect_arch(state_dict, spec.family)
    except CheckpointError:
        if arch is None:
            raise
        found_arch = None
    if arch is not None:
        wanted = _parse_arch(arch, spec.family)
        if found_arch is not None and found_arch != wanted:
            raise CheckpointError(f'--arch {wanted} given, but the checkpoint is a {found_arch}')
        found_arch = wanted
    label = str(wrapper.get('arch', '')) if isinstance(wrapper, Mapping) else ''
    digits = re.findall(r'\d+', label)
    if digits and digits[-1] != re.sub(r'\D', '', found_arch):
        notes.append(f"the checkpoint's own 'arch' field says {label!r}; keys say {found_arch}")

    mapped, dropped, renamed = map_keys(fmt, state_dict)
    cfg = backbone_config(fmt, found_arch)
    return _compare(fmt, reason, found_arch, cfg, state_dict, mapped, dropped, renamed, notes,
                    strict)


def _compare(fmt: str, reason: str, found_arch: str, cfg: Dict[str, Any],
             state_dict: Mapping[str, torch.Tensor], mapped: Dict[str, torch.Tensor],
             dropped: List[str], renamed: Dict[str, str], notes: List[str],
             strict: bool) -> ConversionResult:
    """Check the mapped tensors against the backbone ``cfg`` builds (strictly if ``strict``)."""
    shapes = backbone_shapes(cfg)
    unmapped = sorted(k for k in mapped if k not in shapes)
    absent = sorted(k for k in shapes if k not in mapped)
    tolerated = [k for k in absent if _TOLERATED_MISSING.search(k)]
    missing = [k for k in absent if not _TOLERATED_MISSING.search(k)]
    mismatch = [(k, tuple(v.shape), shapes[k]) for k, v in mapped.items()
                if k in shapes and tuple(v.shape) != shapes[k]]
    bad = set(unmapped) | {k for k, _, _ in mismatch}
    out = {k: v.detach().contiguous() for k, v in mapped.items() if k not in bad}

    result = ConversionResult(
        src_format=fmt, format_reason=reason, arch=found_arch, backbone=cfg,
        num_source_tensors=len(state_dict),
        num_source_params=count_params(state_dict), state_dict=out,
        dropped=sorted(dropped), renamed=renamed, unmapped=unmapped, missing=missing,
        tolerated_missing=tolerated, shape_mismatch=mismatch, notes=notes)
    if strict and not result.ok:
        raise CheckpointError(f'checkpoint does not match {_cfg_str(cfg)} (strict mode):\n  '
                              + '\n  '.join(result.problems())
                              + '\n(--no-strict writes what matches and reports the rest)')
    return result


def convert_checkpoint(src: str, dst: Optional[str], src_format: Optional[str] = None,
                       arch: Optional[str] = None, strict: bool = True, force: bool = False,
                       trusted: bool = False, backbone_type: Optional[str] = None
                       ) -> ConversionResult:
    """Convert SRC into a backbone checkpoint at DST (dst=None: check only, write nothing).

    Raises CheckpointError (unreadable or unconvertible SRC), OutputPathError (unusable DST,
    including any path that reaches SRC), FileExistsError (DST exists, ``force`` not given) or
    OutputWriteError (the write failed; DST is as it was).
    """
    if dst is not None:  # fail before the slow part; atomic_torch_save checks again
        check_output_path(dst, force=force, protect=[src])
    raw = load_checkpoint_file(src, trusted=trusted)
    state_dict, wrapper = extract_state_dict(raw)
    result = convert_state_dict(state_dict, wrapper, src_format=src_format, arch=arch,
                                strict=strict, backbone_type=backbone_type)
    if dst is not None:
        from ..version import __version__
        meta = {
            'source_format': result.src_format,
            'source_file': os.path.basename(src),
            'source_sha256': sha256_file(src),
            'arch': result.arch,
            'backbone': dict(result.backbone),
            'num_tensors': len(result.state_dict),
            'num_params': result.num_params,
            'dropped_keys': list(result.dropped),
            'unmapped_keys': list(result.unmapped),
            'missing_keys': list(result.missing),
            'strict': bool(strict),
            'converter': f'lip_det {__version__}',
            'converted_format_version': CONVERTED_FORMAT_VERSION,
        }
        atomic_torch_save({'state_dict': result.state_dict, 'meta': meta}, dst, force=force,
                          protect=[src])
    return result

"""The synthetic COCO generator and its CLI under hostile or careless input.

Every refusal is checked for its exact error (type, named argument, exit status, one line,
no traceback) and for leaving everything of the user's unchanged (a snapshot of types,
modes, bytes and link targets before and after); every accepted case for its result.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest

from lip_det.datasets.synthetic_coco import (MAX_CLUTTER, MAX_IMAGES, MAX_OBJECTS, MAX_SIDE,
                                             MIN_SIDE, ForeignContentError,
                                             SyntheticCocoConfig, SyntheticParamError,
                                             dataset_digest, generate_synthetic_coco,
                                             parse_size_fractions)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'make_synthetic_coco.py')

# Small images with small objects only: a set takes milliseconds.
SMALL = dict(num_train=2, num_val=1, width=96, height=80, size_fractions=(1, 0, 0))
SMALL_ARGS = ['--num-train', '2', '--num-val', '1', '--width', '96', '--height', '80',
              '--size-fractions', '1,0,0', '--quiet']


def snapshot(root: str) -> Dict[str, Tuple]:
    """Every entry under root (links not followed): kind, mode and bytes digest or target."""
    out: Dict[str, Tuple] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, root)
            st = os.lstat(path)
            if osp.islink(path):
                out[rel] = ('link', os.readlink(path))
            elif osp.isdir(path):
                out[rel] = ('dir', st.st_mode & 0o7777)
            else:
                with open(path, 'rb') as f:
                    out[rel] = ('file', st.st_mode & 0o7777, hashlib.sha256(f.read()).hexdigest())
    return out


def leftovers(parent: str) -> List[str]:
    """Temporary directories of the generator left in parent."""
    return [n for n in os.listdir(parent) if n.startswith('.synthetic-')]


def make_set(root: str, **overrides) -> Dict:
    """Generate a SMALL set (with overrides) at root and return its summary."""
    return generate_synthetic_coco(root, SyntheticCocoConfig(**dict(SMALL, **overrides)))


def reference(tmp_path, **overrides) -> str:
    """Digest of a fresh set with these parameters, generated elsewhere."""
    root = str(tmp_path / f'ref-{len(os.listdir(tmp_path))}')
    make_set(root, **overrides)
    return dataset_digest(root)


def strip_file_records(root: str) -> None:
    """Make root's meta look like one written before per-file records existed."""
    path = osp.join(root, 'synthetic_meta.json')
    with open(path) as f:
        meta = json.load(f)
    del meta['files']
    with open(path, 'w') as f:
        json.dump(meta, f, indent=2)


@pytest.fixture(scope='module')
def tool():
    """tools/make_synthetic_coco.py as a module, for in-process main() calls."""
    spec = importlib.util.spec_from_file_location('_make_synthetic_coco_hostile', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(tool, capsys, args: List[str]) -> Tuple[int, str, str]:
    """(status, stdout, stderr) of main(args)."""
    capsys.readouterr()
    rc = tool.main(args)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line_error(err: str, *parts: str) -> None:
    """stderr is exactly one 'make_synthetic_coco: error: ...' line containing parts."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('make_synthetic_coco: error: '), err
    assert 'Traceback' not in err
    for part in parts:
        assert part in lines[0], (part, err)


# ----------------------------------------------------------------------------- byte compatibility

def test_generated_content_is_pinned(tmp_path):
    """Images and annotations stay those of every earlier run (a benchmark depends on them)."""
    root = str(tmp_path / 'set')
    make_set(root, num_train=5, num_val=1)
    # Digests of the set written by the generator before the hostile-input changes; pixels
    # rather than PNG bytes so a different zlib does not fail the test.
    pinned = {
        'train': '95df7d35eb31f4cd458ba9c7696be3299719c8a2c756687f09b2d015d48de8b5',
        'val': 'e34e65973e6025c669f2a97e68730e94fb4ceb35430b605643f90aad4e0da06a',
        'instances_train.json':
            'bb33106f33404eda260d848f46258e13fa49c3d33e09579f9dc01905c4c6851e',
        'instances_val.json':
            '1a8927e44429982fc28d51365a3d0e5ea57bd4cb8aef32f71ff56a4387750c60',
    }
    for split in ('train', 'val'):
        h = hashlib.sha256()
        for name in sorted(os.listdir(osp.join(root, split))):
            h.update(name.encode())
            h.update(cv2.imread(osp.join(root, split, name), cv2.IMREAD_UNCHANGED).tobytes())
        assert h.hexdigest() == pinned[split], split
    for name in ('instances_train.json', 'instances_val.json'):
        with open(osp.join(root, 'annotations', name), 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == pinned[name], name
    with open(osp.join(root, 'synthetic_meta.json')) as f:
        meta = json.load(f)
    # A set without masks records no 'masks' parameter, so sets written before the option
    # existed are the same set (reused, not "other parameters").
    assert 'masks' not in meta['params']
    # Every file is recorded with its size and digest; the meta lists nothing else.
    assert sorted(meta['files']) == sorted(
        ['annotations/instances_train.json', 'annotations/instances_val.json', 'val/000000.png']
        + [f'train/{i:06d}.png' for i in range(5)])
    for rel, rec in meta['files'].items():
        with open(osp.join(root, rel), 'rb') as f:
            data = f.read()
        assert rec == dict(size=len(data), sha256=hashlib.sha256(data).hexdigest())


# ----------------------------------------------------------------------------- parameter bounds

NON_FINITE_FRACTIONS = [
    (math.nan, 0.5, 0.5), (0.5, math.nan, 0.5), (0.5, 0.5, math.nan),
    (math.inf, 0.0, 0.0), (0.0, math.inf, 0.0), (-math.inf, 1.0, 1.0),
    (1e308, 1e308, 1.0),  # each finite, the sum overflows to inf
    (1.7e308, 0.0, 1.7e308),
    (0.0, 0.0, 0.0), (-0.0, 0.0, 0.0), (1.0, -1e-9, 0.0),
]


@pytest.mark.parametrize('fractions', NON_FINITE_FRACTIONS, ids=repr)
def test_non_finite_or_degenerate_fractions_are_refused_up_front(tmp_path, fractions):
    with pytest.raises(SyntheticParamError, match='size_fractions') as info:
        make_set(str(tmp_path / 'x'), size_fractions=fractions)
    assert info.value.fields == ('size_fractions',)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('fractions', [
    'abc', (1, 2), (1, 2, 3, 4), (True, False, False), ('0.5', '0.3', '0.2'), None])
def test_malformed_fractions_are_refused(tmp_path, fractions):
    with pytest.raises(SyntheticParamError, match='size_fractions'):
        make_set(str(tmp_path / 'x'), size_fractions=fractions)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('text', ['1,2', '1,2,3,4', 'a,b,c', '', ',,', '0.5;0.3;0.2'])
def test_parse_size_fractions_refuses_malformed_text(text):
    with pytest.raises(SyntheticParamError, match='S,M,L') as info:
        parse_size_fractions(text)
    assert info.value.fields == ('size_fractions',)


def test_parse_size_fractions_passes_non_finite_values_on_to_validate():
    # Parsing is syntax only; validate() names the range problem.
    assert math.isnan(parse_size_fractions('nan,0.5,0.5')[0])
    assert parse_size_fractions('inf,0,1e308') == (math.inf, 0.0, 1e308)


OUT_OF_RANGE = [
    (dict(width=100000), 'width'), (dict(height=100000), 'height'),
    (dict(width=100000, height=100000), 'width'),
    (dict(width=MAX_SIDE + 1), 'width'), (dict(height=MAX_SIDE + 1), 'height'),
    (dict(width=MIN_SIDE - 1), 'width'), (dict(height=0), 'height'), (dict(width=-96), 'width'),
    (dict(num_train=MAX_IMAGES + 1), 'num_train'), (dict(num_val=MAX_IMAGES + 1), 'num_val'),
    (dict(num_train=-1), 'num_train'), (dict(num_val=-5), 'num_val'),
    (dict(num_train=0, num_val=0), 'num_train'),
    (dict(max_objects=MAX_OBJECTS + 1), 'max_objects'), (dict(min_objects=0), 'min_objects'),
    (dict(min_objects=5, max_objects=2), 'min_objects'),
    (dict(clutter=MAX_CLUTTER + 1), 'clutter'), (dict(clutter=-1), 'clutter'),
    (dict(seed=2**63), 'seed'), (dict(seed=-2**63 - 1), 'seed'),
    (dict(noise_std=math.nan), 'noise_std'), (dict(noise_std=math.inf), 'noise_std'),
    (dict(noise_std=-1.0), 'noise_std'), (dict(noise_std=256.0), 'noise_std'),
    (dict(version=3), 'version'),
    # Wrong types: a float, bool or string where an integer is meant.
    (dict(width=96.0), 'width'), (dict(num_train=True), 'num_train'),
    (dict(num_train='2'), 'num_train'), (dict(seed=0.5), 'seed'),
    (dict(noise_std='6'), 'noise_std'),
    (dict(masks=1), 'masks'), (dict(masks='yes'), 'masks'), (dict(masks=None), 'masks'),
    (dict(width=150, height=150, size_fractions=(0.5, 0.35, 0.15)), 'large objects'),
]


@pytest.mark.parametrize('overrides, name', OUT_OF_RANGE, ids=repr)
def test_out_of_range_parameters_are_named(tmp_path, overrides, name):
    with pytest.raises(SyntheticParamError, match=name):
        make_set(str(tmp_path / 'x'), **overrides)
    assert os.listdir(tmp_path) == []


# Each accepted bound beside the nearest value past it (None: nothing lies past it).
_BOUNDS = [
    (dict(width=MAX_SIDE, height=MAX_SIDE), dict(width=MAX_SIDE + 1)),
    (dict(width=MIN_SIDE), dict(width=MIN_SIDE - 1)),
    (dict(num_train=MAX_IMAGES, num_val=MAX_IMAGES), dict(num_train=MAX_IMAGES + 1)),
    (dict(num_train=0, num_val=1), dict(num_train=0, num_val=0)),
    (dict(min_objects=1, max_objects=MAX_OBJECTS), dict(min_objects=1, max_objects=MAX_OBJECTS + 1)),
    (dict(clutter=0), dict(clutter=-1)), (dict(clutter=MAX_CLUTTER), dict(clutter=MAX_CLUTTER + 1)),
    (dict(seed=2**63 - 1), dict(seed=2**63)), (dict(seed=-2**63), dict(seed=-2**63 - 1)),
    (dict(noise_std=0.0), dict(noise_std=-1e-9)), (dict(noise_std=255), dict(noise_std=255.5)),
    (dict(width=np.int64(96), num_train=np.int32(2)), dict(width=96.0)),
    (dict(size_fractions=(1e308, 0.0, 0.0)), dict(size_fractions=(1e308, 1e308, 0.0))),
    (dict(size_fractions=(5e-324, 0.0, 0.0)), dict(size_fractions=(0.0, 0.0, 0.0))),
    (dict(masks=True), dict(masks=1)), (dict(masks=np.bool_(True)), dict(masks='yes')),
]


@pytest.mark.parametrize('inside, outside', _BOUNDS, ids=[str(sorted(b[0])) for b in _BOUNDS])
def test_bounds_themselves_are_accepted(inside, outside):
    """The limits are inclusive (the bound validates, the value past it does not), and numpy
    integers count as integers."""
    cfg = SyntheticCocoConfig(**dict(SMALL, **inside))
    assert cfg.validate() is None and all(getattr(cfg, k) == v for k, v in inside.items()
                                          if not isinstance(v, tuple))
    with pytest.raises(ValueError, match=list(outside)[-1]):
        SyntheticCocoConfig(**dict(SMALL, **outside)).validate()


def test_extreme_but_finite_fractions_generate(tmp_path):
    """Finite fractions with a finite sum are normalised, however large or small."""
    tiny = make_set(str(tmp_path / 'tiny'), size_fractions=(5e-324, 0.0, 0.0))
    huge = make_set(str(tmp_path / 'huge'), size_fractions=(1e308, 0.0, 0.0))
    assert tiny['splits'] == huge['splits']
    assert dataset_digest(str(tmp_path / 'tiny')) != ''
    numpy_ints = make_set(str(tmp_path / 'np'), num_train=np.int64(2),
                          size_fractions=np.array([1.0, 0.0, 0.0]))
    assert numpy_ints['params']['num_train'] == 2
    assert type(numpy_ints['params']['size_fractions'][0]) is float


CLI_BAD = [
    (['--size-fractions', 'nan,0.5,0.5'], '--size-fractions', 'finite'),
    (['--size-fractions', 'inf,0,0'], '--size-fractions', 'finite'),
    (['--size-fractions=-inf,1,1'], '--size-fractions', 'finite'),
    (['--size-fractions', '-inf,1,1'], '--size-fractions', 'expected one argument'),
    (['--size-fractions', '1e308,1e308,1'], '--size-fractions', 'finite'),
    (['--size-fractions', '0,0,0'], '--size-fractions', 'positive'),
    (['--size-fractions', '1,2'], '--size-fractions', 'S,M,L'),
    (['--width', '100000'], '--width', '64..4096'),
    (['--height', '100000'], '--height', '64..4096'),
    (['--width', '100000', '--height', '100000'], '--width', '64..4096'),
    (['--width', '32'], '--width', '64..4096'),
    (['--num-train', '100001'], '--num-train', '0..100000'),
    (['--num-val', '-1'], '--num-val', '0..100000'),
    (['--num-train', '0', '--num-val', '0'], '--num-train/--num-val', 'must not both be 0'),
    (['--max-objects', '201'], '--max-objects', '1..200'),
    (['--min-objects', '9', '--max-objects', '3'], '--min-objects/--max-objects', 'min_objects'),
    (['--clutter', '1001'], '--clutter', '0..1000'),
    (['--seed', str(2**63)], '--seed', 'integer'),
    (['--width', '1e5'], '--width', 'invalid int value'),
    (['--width', 'nan'], '--width', 'invalid int value'),
    (['--bogus'], 'unrecognized arguments', '--bogus'),
]


@pytest.mark.parametrize('extra, flag, text', CLI_BAD, ids=lambda v: str(v))
def test_cli_bad_arguments_exit_2_with_one_line(tool, capsys, tmp_path, extra, flag, text):
    out = str(tmp_path / 'out')
    rc, stdout, err = run_main(tool, capsys, ['--out', out] + SMALL_ARGS + extra)
    assert rc == 2
    assert_one_line_error(err, flag, text)
    assert stdout == ''
    assert not osp.exists(out) and leftovers(str(tmp_path)) == []


def test_cli_bad_arguments_in_a_real_process(tmp_path):
    """No traceback and exit status 2 from the script itself, for both kinds of bad value."""
    for extra, flag in ((['--size-fractions', 'nan,0.5,0.5'], '--size-fractions'),
                        (['--width', '100000', '--height', '100000'], '--width')):
        proc = subprocess.run([sys.executable, TOOL, '--out', str(tmp_path / 'o')] + extra,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert_one_line_error(proc.stderr, flag)
    assert os.listdir(tmp_path) == []


def test_help_documents_the_bounds(tool, capsys):
    with pytest.raises(SystemExit) as info:
        tool.main(['--help'])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for part in ('64..4096', '0..100000', '1..200', '0..1000', 'finite', 'never', 'Exit status'):
        assert part in text, part


# ----------------------------------------------------------------------------- data loss

def test_force_in_a_project_dir_deletes_nothing(tmp_path):
    """The issue's reproduction: --out . --force in a project directory."""
    proj = tmp_path / 'proj'
    (proj / 'src').mkdir(parents=True)
    (proj / 'src' / 'main.py').write_text('code\n')
    before = snapshot(str(tmp_path))
    proc = subprocess.run([sys.executable, TOOL, '--out', '.', '--num-train', '1',
                           '--num-val', '1', '--force'], cwd=str(proj), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, 'argument --out', "'src/main.py'", 'did not write')
    assert snapshot(str(tmp_path)) == before
    assert (proj / 'src' / 'main.py').read_text() == 'code\n'


@pytest.mark.parametrize('force', [False, True])
def test_foreign_files_anywhere_refuse_the_directory(tool, capsys, tmp_path, force):
    """A file the set does not hold, at any depth or under an owned-looking name, blocks
    every write; only the error names it, --force or not."""
    cases = {
        'notes.txt': 'notes.txt',                    # top level, beside an own set
        'train/sub/notes.txt': 'train/sub/notes.txt',  # nested in a subdirectory
        'train/000007.png': 'train/000007.png',      # owned pattern, index beyond num_train
        'train/0000001.png': 'train/0000001.png',    # not the canonical spelling
        'annotations/instances_test.json': 'annotations/instances_test.json',
        'extra/deep/er/file.bin': 'extra/deep/er/file.bin',
    }
    for i, (rel, named) in enumerate(cases.items()):
        root = tmp_path / f'set{i}'
        make_set(str(root))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b'user data')
        before = snapshot(str(tmp_path))
        # Other parameters: a write is needed (with --force it would replace the set).
        args = ['--out', str(root)] + SMALL_ARGS + ['--num-train', '3']
        rc, _, err = run_main(tool, capsys, args + (['--force'] if force else []))
        assert rc == 2, rel
        assert_one_line_error(err, 'argument --out', repr(named), 'did not write')
        assert snapshot(str(tmp_path)) == before, rel
        with pytest.raises(ForeignContentError, match='did not write'):
            make_set(str(root), num_train=3) if not force else generate_synthetic_coco(
                str(root), SyntheticCocoConfig(**dict(SMALL, num_train=3)), force=True)
        assert snapshot(str(tmp_path)) == before, rel
        assert leftovers(str(tmp_path)) == []


def test_foreign_file_beside_an_intact_set_is_left_and_the_set_reused(tmp_path):
    """Reuse writes nothing, so a user's file beside an intact set does not matter."""
    root = tmp_path / 'set'
    make_set(str(root))
    (root / 'README.md').write_text('my notes\n')
    before = snapshot(str(root))
    assert make_set(str(root))['action'] == 'reused'
    assert snapshot(str(root)) == before


def test_links_inside_the_set_are_never_followed_or_removed(tmp_path):
    """A link (to a file or a directory outside) is foreign: refused, its target intact."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'precious.txt').write_text('keep me\n')
    (outside / '000000.png').write_bytes(b'not a png')
    for i, (rel, target) in enumerate((('train/000000.png', outside / 'precious.txt'),
                                      ('val', outside),
                                      ('annotations', outside),
                                      ('link_to_outside', outside))):
        root = tmp_path / f'set{i}'
        make_set(str(root))
        link = root / rel
        if osp.isdir(link) and not osp.islink(link):
            for name in os.listdir(link):
                os.unlink(link / name)
            os.rmdir(link)
        elif osp.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
        before = snapshot(str(tmp_path))
        if rel == 'link_to_outside':
            # Beside an intact set a link is harmless to reuse, which writes nothing.
            assert make_set(str(root))['action'] == 'reused'
        else:
            # The set is damaged now, so repairing it needs a write: refused.
            with pytest.raises(ForeignContentError, match=f"'{rel}' \\(a symbolic link to"):
                make_set(str(root))
        # Other parameters with force: refused too, nothing changed on either side.
        with pytest.raises(ForeignContentError, match='symbolic link'):
            generate_synthetic_coco(str(root), SyntheticCocoConfig(**dict(SMALL, seed=9)),
                                    force=True)
        assert snapshot(str(tmp_path)) == before, rel
    assert (outside / 'precious.txt').read_text() == 'keep me\n'
    assert leftovers(str(tmp_path)) == []


def test_out_is_a_link_to_a_set(tmp_path):
    """--out a link to a directory: the set is written behind the link, which stays."""
    real = tmp_path / 'disk' / 'set'
    make_set(str(real))
    link = tmp_path / 'data'
    os.symlink(real, link)
    assert make_set(str(link))['action'] == 'reused'
    summary = generate_synthetic_coco(str(link), SyntheticCocoConfig(**dict(SMALL, num_train=3)),
                                      force=True)
    assert summary['action'] == 'replaced'
    assert osp.islink(link) and os.readlink(link) == str(real)
    assert dataset_digest(str(real)) == reference(tmp_path, num_train=3)
    assert leftovers(str(tmp_path / 'disk')) == []


def test_out_is_a_file(tool, capsys, tmp_path):
    target = tmp_path / 'file.txt'
    target.write_text('mine\n')
    before = snapshot(str(tmp_path))
    rc, _, err = run_main(tool, capsys, ['--out', str(target), '--force'] + SMALL_ARGS)
    assert rc == 2
    assert_one_line_error(err, 'argument --out', 'not a directory')
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize('content', [b'{"params": {"num_tr', b'\x00\xff garbage', b'[1, 2]',
                                     b'{"params": {"num_train": "2", "num_val": 1}, '
                                     b'"splits": {}}', b''])
def test_unreadable_meta_is_refused_even_with_force(tool, capsys, tmp_path, content):
    """Without a readable meta nothing in the directory is provably the tool's."""
    root = tmp_path / 'set'
    make_set(str(root))
    (root / 'synthetic_meta.json').write_bytes(content)
    before = snapshot(str(tmp_path))
    for force in ([], ['--force']):
        rc, _, err = run_main(tool, capsys, ['--out', str(root)] + SMALL_ARGS + force)
        assert rc == 2
        assert_one_line_error(err, 'argument --out', 'synthetic_meta.json', 'not provably')
    assert snapshot(str(tmp_path)) == before


def test_meta_listing_outside_paths_cannot_reach_them(tmp_path):
    """A crafted meta's file list is only compared, never used to delete anything."""
    outside = tmp_path / 'outside.txt'
    outside.write_text('keep me\n')
    root = tmp_path / 'set'
    make_set(str(root))
    meta_path = root / 'synthetic_meta.json'
    meta = json.loads(meta_path.read_text())
    meta['files']['../outside.txt'] = dict(size=8, sha256='0' * 64)
    meta_path.write_text(json.dumps(meta))
    summary = make_set(str(root))
    assert summary['action'] == 'repaired' and 'outside.txt' in summary['damage']
    assert outside.read_text() == 'keep me\n'
    assert dataset_digest(str(root)) == reference(tmp_path)


def test_force_replaces_only_the_tools_own_set(tmp_path):
    """With --force an own set of other parameters is replaced completely and in place."""
    root = tmp_path / 'set'
    make_set(str(root), num_train=4)
    with pytest.raises(FileExistsError, match=r'num_train 4 -> 2.*--force'):
        make_set(str(root))
    summary = generate_synthetic_coco(str(root), SyntheticCocoConfig(**SMALL), force=True)
    assert summary['action'] == 'replaced'
    assert sorted(os.listdir(root / 'train')) == ['000000.png', '000001.png']
    assert dataset_digest(str(root)) == reference(tmp_path)
    assert leftovers(str(tmp_path)) == []


def test_empty_directory_is_filled_without_force(tmp_path):
    root = tmp_path / 'empty'
    root.mkdir()
    assert make_set(str(root))['action'] == 'generated'
    assert dataset_digest(str(root)) == reference(tmp_path)


# ----------------------------------------------------------------------------- damaged sets

def _truncate(path, keep=20):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:keep])


def _flip_byte(path):
    # Same size, different content: only a digest notices.
    with open(path, 'r+b') as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xff]))


DAMAGE = [
    ('missing image', lambda r: os.unlink(r / 'train' / '000001.png'),
     'train/000001.png is missing'),
    ('missing val dir', lambda r: [os.unlink(p) for p in (r / 'val').iterdir()]
     and os.rmdir(r / 'val'), 'val/000000.png is missing'),
    ('truncated image', lambda r: _truncate(r / 'val' / '000000.png', 100),
     'val/000000.png is 100 bytes'),
    ('altered image', lambda r: _flip_byte(r / 'train' / '000000.png'),
     'train/000000.png differs'),
    ('truncated json', lambda r: _truncate(r / 'annotations' / 'instances_train.json', 30),
     'annotations/instances_train.json'),
    ('garbage json', lambda r: (r / 'annotations' / 'instances_val.json').write_bytes(b'\x00' * 9),
     'annotations/instances_val.json'),
    ('missing json', lambda r: os.unlink(r / 'annotations' / 'instances_val.json'),
     'annotations/instances_val.json is missing'),
    ('image is a directory', lambda r: os.unlink(r / 'train' / '000000.png')
     or os.mkdir(r / 'train' / '000000.png'), 'train/000000.png is not a regular file'),
]


# Legacy metas record no digests: a same-size edit is their documented limit (tested below).
DAMAGE_CASES = [(legacy, *d) for legacy in (False, True) for d in DAMAGE
                if not (legacy and d[0] == 'altered image')]


@pytest.mark.parametrize('legacy, name, damage, reason', DAMAGE_CASES,
                         ids=[f'{c[1]}-{"legacy" if c[0] else "digests"}' for c in DAMAGE_CASES])
def test_damaged_own_set_is_regenerated(tmp_path, legacy, name, damage, reason):
    """A damaged set of the same parameters is regenerated in place, no --force needed."""
    root = tmp_path / 'set'
    if name == 'image is a directory':
        # A directory under an owned name is foreign content, so the repair is refused.
        make_set(str(root))
        if legacy:
            strip_file_records(str(root))
        damage(root)
        before = snapshot(str(tmp_path))
        with pytest.raises(ForeignContentError, match="'train/000000.png/' \\(a directory\\)"):
            make_set(str(root))
        assert snapshot(str(tmp_path)) == before
        return
    make_set(str(root))
    if legacy:
        strip_file_records(str(root))
    damage(root)
    summary = make_set(str(root))
    assert summary['action'] == 'repaired'
    if not legacy or name in ('missing image', 'missing val dir', 'missing json'):
        assert reason in summary['damage']
    else:
        # Without recorded sizes the checks are framing and content: a damaged file still
        # shows, named, but as incomplete or not matching rather than by size.
        assert reason.split()[0] in summary['damage']
    assert dataset_digest(str(root)) == reference(tmp_path)
    assert leftovers(str(tmp_path)) == []
    # Repaired means recorded afresh: the next run reuses it.
    assert make_set(str(root))['action'] == 'reused'


def test_legacy_altered_image_of_same_size_is_not_detectable(tmp_path):
    """Documented limit: a meta without digests cannot show a same-size edit inside a PNG."""
    root = tmp_path / 'set'
    make_set(str(root))
    strip_file_records(str(root))
    _flip_byte(root / 'train' / '000000.png')
    assert make_set(str(root))['action'] == 'reused'


def test_legacy_intact_set_is_reused_untouched(tmp_path):
    """A set written before per-file records (no "files" in its meta) is accepted as it is."""
    root = tmp_path / 'set'
    make_set(str(root))
    strip_file_records(str(root))
    before = snapshot(str(root))
    summary = make_set(str(root))
    assert summary['action'] == 'reused' and summary['splits']['train']['images'] == 2
    assert snapshot(str(root)) == before
    # A legacy set of other parameters is still the tool's own: --force replaces it.
    replaced = generate_synthetic_coco(str(root), SyntheticCocoConfig(**dict(SMALL, seed=5)),
                                       force=True)
    assert replaced['action'] == 'replaced'
    assert dataset_digest(str(root)) == reference(tmp_path, seed=5)


def test_damaged_meta_summary_is_detected(tmp_path):
    """A meta whose summary no longer matches its annotation files is damage too."""
    root = tmp_path / 'set'
    make_set(str(root))
    meta_path = root / 'synthetic_meta.json'
    meta = json.loads(meta_path.read_text())
    meta['splits']['train']['annotations'] += 1
    meta_path.write_text(json.dumps(meta))
    summary = make_set(str(root))
    assert summary['action'] == 'repaired' and 'does not match' in summary['damage']


def test_cli_reports_a_repair(tool, capsys, tmp_path):
    root = tmp_path / 'set'
    make_set(str(root))
    os.unlink(root / 'train' / '000000.png')
    rc, out, err = run_main(tool, capsys, ['--out', str(root)] + SMALL_ARGS)
    assert rc == 0, err
    assert '(repaired,' in out and 'train/000000.png is missing' in out
    rc, out, _ = run_main(tool, capsys, ['--out', str(root)] + SMALL_ARGS)
    assert rc == 0 and '(reused,' in out


def test_cli_other_parameters_without_force_exit_1(tool, capsys, tmp_path):
    root = tmp_path / 'set'
    make_set(str(root))
    before = snapshot(str(root))
    rc, _, err = run_main(tool, capsys, ['--out', str(root)] + SMALL_ARGS + ['--seed', '4'])
    assert rc == 1
    assert_one_line_error(err, 'argument --out', 'seed 0 -> 4', '--force')
    assert snapshot(str(root)) == before


@pytest.mark.parametrize('below', ['file.txt/set', 'file.txt/deeper/set'])
def test_out_below_a_file(tool, capsys, tmp_path, below):
    (tmp_path / 'file.txt').write_text('mine\n')
    before = snapshot(str(tmp_path))
    rc, _, err = run_main(tool, capsys, ['--out', str(tmp_path / below), '--force'] + SMALL_ARGS)
    assert rc == 2
    assert_one_line_error(err, 'argument --out', 'file.txt', 'is not a directory')
    assert snapshot(str(tmp_path)) == before


def test_cli_unwritable_parent_is_one_line(tool, capsys, tmp_path):
    if os.geteuid() == 0:
        pytest.skip('root writes into read-only directories')
    parent = tmp_path / 'ro'
    parent.mkdir()
    os.chmod(parent, 0o555)
    try:
        rc, _, err = run_main(tool, capsys, ['--out', str(parent / 'set')] + SMALL_ARGS)
    finally:
        os.chmod(parent, 0o755)
    assert rc == 1
    assert_one_line_error(err, 'could not write the set', 'Permission denied')
    assert os.listdir(parent) == []


# ----------------------------------------------------------------------------- modes

@pytest.mark.parametrize('umask, dir_mode, file_mode', [(0o022, 0o755, 0o644),
                                                       (0o077, 0o700, 0o600),
                                                       (0o002, 0o775, 0o664)])
def test_created_directories_follow_the_umask(tmp_path, umask, dir_mode, file_mode):
    old = os.umask(umask)
    try:
        fresh = tmp_path / 'a' / 'set'  # the missing parent is created too
        make_set(str(fresh))
        replaced = tmp_path / 'b'
        make_set(str(replaced), num_train=3)
        generate_synthetic_coco(str(replaced), SyntheticCocoConfig(**SMALL), force=True)
    finally:
        os.umask(old)
    for root in (fresh, replaced):
        for rel, entry in snapshot(str(root)).items():
            assert entry[1] == (dir_mode if entry[0] == 'dir' else file_mode), (rel, entry)
        assert os.stat(root).st_mode & 0o777 == dir_mode
    assert os.stat(tmp_path / 'a').st_mode & 0o777 == dir_mode

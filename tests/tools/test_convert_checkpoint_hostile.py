"""tools/convert_checkpoint.py against careless and hostile input.

SRC is never written however DST reaches it; an unusable DST is refused before the slow part;
a failed or interrupted write leaves DST as it was and no temporary file; unreadable or
malicious sources are refused in one line that names the file and what was refused.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from .tool_loader import REPO, load_tool

reference_models = load_tool('reference_models')
RefResNet, randomize_ = reference_models.RefResNet, reference_models.randomize_

cli = load_tool('convert_checkpoint')


@pytest.fixture(scope='module')
def r18(tmp_path_factory):
    """A torchvision ResNet-18 state_dict (converts to mmdet's ResNet)."""
    path = str(tmp_path_factory.mktemp('r18') / 'resnet18.pth')
    torch.save(randomize_(RefResNet(18, 'torchvision')).state_dict(), path)
    return path


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _tree(root):
    """Every entry under root: path -> ('link', target) / ('dir',) / ('file', sha256)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ('link', os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ('dir',)
            else:
                out[rel] = ('file', _sha(path))
    return out


def _run(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    assert 'Traceback' not in err
    return lines[0]


@pytest.fixture
def src(tmp_path, r18):
    """A private copy of the source checkpoint in tmp_path/work."""
    work = tmp_path / 'work'
    work.mkdir()
    path = work / 'src.pth'
    path.write_bytes(open(r18, 'rb').read())
    return str(path)


# ------------------------------------------------------------------ SRC reached through DST
def _ways_to_reach(src):
    """(SRC argument, DST argument) pairs that name the same file in another way."""
    work = os.path.dirname(src)
    os.symlink(src, os.path.join(work, 'link.pth'))
    os.symlink(os.path.join(work, 'link.pth'), os.path.join(work, 'link2.pth'))
    os.link(src, os.path.join(work, 'hard.pth'))
    os.symlink(work, os.path.join(os.path.dirname(work), 'worklink'))
    os.mkdir(os.path.join(work, 'sub'))
    j = os.path.join
    return {
        'src-is-a-symlink-to-dst': (j(work, 'link.pth'), src),  # the case
        'dst-is-a-symlink-to-src': (src, j(work, 'link.pth')),
        'chain-of-symlinks': (j(work, 'link2.pth'), src),
        'src-is-a-hard-link-of-dst': (j(work, 'hard.pth'), src),
        'dst-is-a-hard-link-of-src': (src, j(work, 'hard.pth')),
        'symlinked-directory': (src, j(os.path.dirname(work), 'worklink', 'src.pth')),
        'dot-dot-path': (src, j(work, 'sub', '..', 'src.pth')),
        'relative-path': (src, os.path.relpath(src)),
    }


@pytest.mark.parametrize('way', ['src-is-a-symlink-to-dst', 'dst-is-a-symlink-to-src',
                                 'chain-of-symlinks', 'src-is-a-hard-link-of-dst',
                                 'dst-is-a-hard-link-of-src', 'symlinked-directory',
                                 'dot-dot-path', 'relative-path'])
@pytest.mark.parametrize('force', [True, False], ids=['force', 'no-force'])
def test_source_is_never_written_however_reached(tmp_path, src, capsys, way, force):
    a, b = _ways_to_reach(src)[way]
    before = _tree(tmp_path)
    code, out, err = _run([a, b] + (['--force'] if force else []), capsys)
    line = _one_line_error(err)
    assert code == 2 and 'never overwritten' in line and repr(b) in line
    assert _tree(tmp_path) == before, 'SRC, its links or its directory changed'


def test_other_files_converting_next_to_the_source_still_work(tmp_path, src, capsys):
    dst = os.path.join(os.path.dirname(src), 'backbone.pth')
    code, _, err = _run([src, dst], capsys)
    assert code == 0, err
    assert torch.load(dst, weights_only=True)['meta']['source_sha256'] == _sha(src)


# ------------------------------------------------------------------ unusable DST
@pytest.mark.parametrize('force', [True, False], ids=['force', 'no-force'])
def test_dst_that_is_a_directory_is_refused(tmp_path, src, capsys, force):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    (out_dir / 'mine.txt').write_text('keep me')
    before = _tree(tmp_path)
    for dst in (str(out_dir), str(out_dir) + os.sep):
        code, _, err = _run([src, dst] + (['--force'] if force else []), capsys)
        line = _one_line_error(err)
        assert code == 2 and 'is a directory' in line and 'backbone.pth' in line
    assert _tree(tmp_path) == before


def test_dst_with_a_trailing_slash_is_not_created_as_a_directory(tmp_path, src, capsys):
    code, _, err = _run([src, str(tmp_path / 'newdir') + '/'], capsys)
    assert code == 2 and 'is a directory' in _one_line_error(err)
    assert not (tmp_path / 'newdir').exists()


@pytest.mark.parametrize('below', ['out.pth', 'a/b/out.pth'])
def test_dst_below_a_regular_file_is_refused(tmp_path, src, capsys, below):
    notes = tmp_path / 'notes.txt'
    notes.write_text('my notes')
    before = _tree(tmp_path)
    code, _, err = _run([src, str(notes / below), '--force'], capsys)
    line = _one_line_error(err)
    assert code == 2 and f"{str(notes)!r} is not a directory" in line
    assert _tree(tmp_path) == before


def test_dst_in_a_directory_without_write_permission(tmp_path, src, capsys, monkeypatch):
    # root may write anywhere: simulate what a normal user meets in a read-only directory
    real_access = os.access
    locked = str(tmp_path / 'locked')
    os.mkdir(locked)
    monkeypatch.setattr(os, 'access', lambda p, mode, **kw: False if os.path.abspath(p) == locked
                        else real_access(p, mode, **kw))
    code, _, err = _run([src, os.path.join(locked, 'out.pth')], capsys)
    line = _one_line_error(err)
    assert code == 2 and 'permission denied' in line and repr(locked) in line
    assert os.listdir(locked) == []


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores directory permissions')
def test_dst_in_a_read_only_directory(tmp_path, src, capsys):  # pragma: no cover - non-root CI
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = _run([src, str(locked / 'out.pth')], capsys)
        assert code == 2 and 'permission denied' in _one_line_error(err)
    finally:
        locked.chmod(0o700)


def _permission_denied(*args, **kwargs):
    raise PermissionError(13, 'Permission denied')


def _disk_full(obj, f, *args, **kwargs):
    f.write(b'half a file')
    raise OSError(28, 'No space left on device')


def _zip_writer_failed(obj, f, *args, **kwargs):
    f.write(b'half a file')
    raise RuntimeError('[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0')


@pytest.mark.parametrize('failure,reason', [
    ('create', 'Permission denied'), ('save-oserror', 'No space left on device'),
    ('save-runtimeerror', 'unexpected pos')])
def test_failed_write_leaves_dst_as_it_was(tmp_path, src, capsys, monkeypatch, failure, reason):
    from lip_det.checkpoints import output
    dst = tmp_path / 'backbone.pth'
    dst.write_bytes(b'precious')
    before = _tree(tmp_path)
    if failure == 'create':
        monkeypatch.setattr(output, '_create_temporary', _permission_denied)
    else:
        monkeypatch.setattr(torch, 'save',
                            _disk_full if failure == 'save-oserror' else _zip_writer_failed)
    code, _, err = _run([src, str(dst), '--force'], capsys)
    line = _one_line_error(err)
    assert code == 4 and 'cannot write' in line and reason in line and 'as it was' in line
    assert _tree(tmp_path) == before, 'DST changed or a temporary file was left'


def test_dst_symlink_is_replaced_never_its_target(tmp_path, src, capsys):
    target = tmp_path / 'someone-elses.pth'
    target.write_bytes(b'not mine')
    link = tmp_path / 'out.pth'
    os.symlink(target, link)
    code, _, err = _run([src, str(link), '--force'], capsys)
    assert code == 0, err
    assert target.read_bytes() == b'not mine' and not os.path.islink(link)
    assert torch.load(str(link), weights_only=True)['meta']['arch'] == 'resnet18'


def test_written_file_gets_the_usual_permissions(tmp_path, src, capsys):
    umask = os.umask(0o022)
    try:
        code, _, err = _run([src, str(tmp_path / 'out.pth')], capsys)
    finally:
        os.umask(umask)
    assert code == 0, err
    assert (os.stat(tmp_path / 'out.pth').st_mode & 0o777) == 0o644


# ------------------------------------------------------------------ unreadable or hostile SRC
@pytest.mark.parametrize('seed', range(6))
def test_random_bytes_are_refused_as_unreadable(tmp_path, capsys, seed):
    rng = random.Random(seed)
    src = tmp_path / 'random.pth'
    src.write_bytes(b'\x80' + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
    before = _tree(tmp_path)
    code, _, err = _run([str(src), str(tmp_path / 'out.pth')], capsys)
    line = _one_line_error(err)
    assert code == 1 and 'not a PyTorch checkpoint' in line and repr(str(src)) in line
    assert '--trust-pickle' not in line  # trusting garbage would only run it
    assert _tree(tmp_path) == before


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


@pytest.mark.parametrize('how', ['pickle', 'legacy', 'zip'])
def test_os_system_is_named_and_trust_pickle_suggested(tmp_path, capsys, r18, how):
    marker = tmp_path / 'code-ran'
    src = str(tmp_path / f'{how}.pth')
    payload = {'state_dict': torch.load(r18, weights_only=True), 'hook': _System(marker)}
    if how == 'pickle':
        with open(src, 'wb') as f:
            pickle.dump(payload, f, protocol=2)
    else:
        torch.save(payload, src, _use_new_zipfile_serialization=how == 'zip')
    code, _, err = _run([src, str(tmp_path / 'out.pth')], capsys)
    line = _one_line_error(err)
    assert code == 1 and 'posix.system (os.system)' in line and '--trust-pickle' in line
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()


def test_src_format_mismatch_does_not_tell_to_pass_what_was_passed(r18, capsys):
    code, _, err = _run([r18, '--check', '--src-format', 'lip'], capsys)
    line = _one_line_error(err)
    assert code == 1 and "--src-format lip given, but the keys look like 'torchvision'" in line
    assert 'pass --src-format' not in line and 'omit --src-format' in line
    assert '--no-strict' in line
    # detected (not given): the summary says how to choose between the two look-alikes
    code, out, _ = _run([r18, '--check'], capsys)
    assert code == 0 and 'pass --src-format softpool or torchvision to choose' in out


# ------------------------------------------------------------------ interrupted write
SLOW_WRITER = textwrap.dedent('''
    import importlib.util, io, sys, time
    import torch
    real_save = torch.save

    def slow_save(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        for start in range(0, len(data), 1 << 20):
            f.write(data[start:start + (1 << 20)])
            f.flush()
            time.sleep(0.2)

    torch.save = slow_save
    spec = importlib.util.spec_from_file_location('convert_checkpoint', {tool!r})
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    sys.exit(tool.main(sys.argv[1:]))
''')


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP], ids=['SIGTERM', 'SIGHUP'])
def test_signal_mid_write_leaves_no_temporary_file(tmp_path, src, signum):
    script = tmp_path / 'slow_convert.py'
    script.write_text(SLOW_WRITER.format(tool=os.path.join(REPO, 'tools', 'convert_checkpoint.py')))
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    dst = out_dir / 'backbone.pth'
    dst.write_bytes(b'precious')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    # The signal at its default action in the child, as in a terminal: under nohup (or any
    # launcher that ignores SIGHUP) the child would inherit SIG_IGN, and the tool rightly leaves
    # an ignored signal alone.
    proc = subprocess.Popen([sys.executable, str(script), src, str(dst), '--force'], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL))
    deadline = time.time() + 240
    try:
        while True:  # wait until the temporary file holds part of the checkpoint
            tmp = [p for p in out_dir.iterdir() if '.tmp-' in p.name]
            if tmp and tmp[0].stat().st_size > (1 << 20):
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, 'the write never started'
            time.sleep(0.05)
        proc.send_signal(signum)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signum  # ended by the signal, as without the handler
    assert sorted(p.name for p in out_dir.iterdir()) == ['backbone.pth']
    assert dst.read_bytes() == b'precious'

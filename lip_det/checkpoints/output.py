"""Writing converted checkpoints: never over a source, never a torn file, never a stray temp file.

A new file is written next to DST under a unique temporary name, fsynced and then renamed over
DST (``os.replace``), so DST is either untouched or complete. A DST that is (or resolves to) a
file the caller protects is refused however it is reached: the same resolved path (symlinks)
or the same device and inode (hard links, bind mounts). A DST that is itself a symlink is
replaced as a link; its target is never written. SIGTERM and SIGHUP during the write remove the
temporary file before the process ends as the signal asks (SIGKILL cannot be caught).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterable, Iterator

import torch

__all__ = ['OutputPathError', 'OutputWriteError', 'same_file', 'check_output_path',
           'atomic_torch_save']


class OutputPathError(ValueError):
    """DST cannot receive the output (a directory, a protected source, no usable parent)."""


class OutputWriteError(OSError):
    """Writing DST failed (permission, disk full, read-only file system); DST is as it was."""


def same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` reach one file: same resolved path or same (st_dev, st_ino)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # follows symlinks, compares st_dev and st_ino
    except OSError:  # one of them does not exist (yet): then they are not the same file
        return False


def _existing_ancestor(directory: str) -> str:
    while not os.path.lexists(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def check_output_path(dst: str, force: bool = False, protect: Iterable[str] = ()) -> str:
    """Check that DST can receive a new file; return the directory it will be written in.

    Raises OutputPathError for a DST that is a directory, names a protected file or has no
    writable directory to live in, and FileExistsError if DST exists and ``force`` is False.
    """
    if not isinstance(dst, str) or not dst:
        raise OutputPathError('DST is empty: give the path of the output file')
    if dst.endswith(('/', os.sep)) or os.path.isdir(dst):
        example = os.path.join(dst, 'backbone.pth')
        raise OutputPathError(f'DST {dst!r} is a directory: give the path of the output file, '
                              f'e.g. {example!r}')
    for src in protect:
        if same_file(dst, src):
            raise OutputPathError(f'DST {dst!r} is the source checkpoint {src!r} (the same file, '
                                  'reached through a link or another path): the source '
                                  'checkpoint is never overwritten; choose another DST')
    if os.path.lexists(dst):
        if not force:
            raise FileExistsError(f'{dst!r} exists; pass --force to overwrite it')
        if not os.path.islink(dst) and not os.path.isfile(dst):
            raise OutputPathError(f'DST {dst!r} exists and is not a regular file; --force '
                                  'replaces files only')
    directory = os.path.dirname(os.path.abspath(dst))
    ancestor = _existing_ancestor(directory)
    if not os.path.isdir(ancestor):
        raise OutputPathError(f'cannot write DST {dst!r}: {ancestor!r} is not a directory')
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f'cannot write DST {dst!r}: permission denied in directory '
                              f'{ancestor!r}')
    return directory


class _Terminated(BaseException):
    """Raised by the write's SIGTERM/SIGHUP handler, so cleanup runs before the process ends."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _termination_raises() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into _Terminated for the block, then end the process as the signal asks.

    Only signals still at their default action (terminate) are taken over: an ignored signal
    stays ignored and a program's own handler stays in charge. Python handlers can only be
    installed from the main thread; elsewhere the block runs unprotected.
    """
    taken, received = [], []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        raise _Terminated(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, handler)
                taken.append(signum)
    try:
        yield
    except _Terminated:
        pass  # the block's own cleanup has run; the process ends below
    finally:
        for signum in taken:
            signal.signal(signum, signal.SIG_DFL)
        # Checked here, not in the except clause: C++ code (torch.save) may have turned the
        # handler's exception into another error on its way out.
        if received:
            signal.raise_signal(received[0])  # default action: the process ends, killed by it
            raise SystemExit(128 + received[0])  # pragma: no cover - only if it did not


def _create_temporary(directory: str, name: str) -> str:
    for attempt in range(100):
        tmp = os.path.join(directory, f'.{name}.tmp-{os.getpid()}-{attempt}')
        try:
            # O_EXCL: never reuse (and so never clobber) an existing file; 0o666 lets the
            # umask give the result the permissions any newly created file would get.
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f'no free temporary file name for {name!r} in {directory!r}')


def atomic_torch_save(obj: Any, dst: str, force: bool = False, protect: Iterable[str] = ()) -> None:
    """torch.save to a temporary file next to dst, fsync, then os.replace (never a torn file)."""
    protect = list(protect)
    directory = check_output_path(dst, force=force, protect=protect)
    with _termination_raises():
        tmp = None
        try:
            os.makedirs(directory, exist_ok=True)
            tmp = _create_temporary(directory, os.path.basename(dst))
            with open(tmp, 'wb') as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            # Converting took a while: DST may have appeared or changed since the first check.
            check_output_path(dst, force=force, protect=protect)
            os.replace(tmp, dst)
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, FileExistsError) and os.path.lexists(dst) and not force:
                raise
            text = str(exc).strip()
            reason = getattr(exc, 'strerror', None) or (text.splitlines()[0] if text
                                                        else type(exc).__name__)
            raise OutputWriteError(f'cannot write {dst!r}: {reason}; {dst!r} is as it was '
                                   'before') from exc
        finally:
            if tmp is not None and os.path.lexists(tmp):
                os.unlink(tmp)

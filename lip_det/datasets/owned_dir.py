"""An output directory a data-set generator owns: written whole, reused, repaired or replaced,
and nothing in it that the generator did not write ever touched.

A generator describes its sets with an ``OwnedSetKind`` and calls ``write_owned_set``. The
rules are the same for every generator:

- a new or empty directory gets a fresh set;
- a set of the same parameters (the meta file's ``params``) is verified -- every file's size
  and SHA-256 as recorded in the meta's ``files``, plus the kind's own content checks -- and
  reused as it is, or regenerated when damaged (it is the tool's own, so no ``force``);
- a set of other parameters is refused with FileExistsError unless ``force``;
- anything else (a file, directory or link the set does not hold, or an unreadable meta) is
  refused with ForeignContentError, ``force`` or not.

What a set holds is derived from the meta's parameters, never from its file list, so a crafted
meta cannot make a file outside the set the tool's. A set is assembled in a temporary sibling
directory and renamed into place, so an interrupted run never leaves a half-written set; a
replaced set is moved aside and only its own files are deleted, one by one, never a tree.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import secrets
import shutil
import stat
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

# Temporary siblings start with this, so leftovers of a killed run are recognisable.
TEMP_PREFIX = '.synthetic-'


class ForeignContentError(FileExistsError):
    """``out_dir`` holds something this generator did not write, so it is never replaced."""


@dataclass(frozen=True)
class OwnedSetKind:
    """What the shared machinery needs to know about one generator's sets."""

    # The JSON file (in the set's top directory) that records params and per-file records.
    meta_name: str
    # A meta far larger than any the generator writes is not one of its own.
    max_meta_bytes: int
    # Every directory a set holds (``/``-separated, parents before children); owned even
    # when empty, as a split of 0 images is.
    dirs: Tuple[str, ...]
    # The files (relative, ``/``-separated, the meta excluded) a set of these params holds,
    # in the order their records are written to the meta.
    files: Callable[[Dict], List[str]]
    # Why a parsed meta is not one this generator could have written, or None. It must
    # guarantee a dict ``params`` that ``files`` accepts and a dict or absent ``files``.
    meta_problem: Callable[[object], Optional[str]]
    # Marks the temporary siblings of this kind: ``.synthetic-<temp_tag>...``.
    temp_tag: str = ''
    meta_indent: int = 2
    # Damage beyond sizes and digests (checked between the two, so cheap checks come first),
    # e.g. annotation files that must match the meta; the only check of a meta without
    # ``files`` beyond presence.
    content_damage: Optional[Callable[[str, Dict], Optional[str]]] = None
    # Values of parameters a meta may omit (added after such sets were written).
    param_defaults: Mapping[str, object] = field(default_factory=dict)


def sha256_file(path: str) -> str:
    """Hex SHA-256 of the file at ``path``, read in blocks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def file_records(root: str, rels: Sequence[str]) -> Dict[str, Dict]:
    """``{rel: {size, sha256}}`` of the files ``rels`` under ``root``, in that order."""
    records = {}
    for rel in rels:
        path = osp.join(root, *rel.split('/'))
        records[rel] = dict(size=os.path.getsize(path), sha256=sha256_file(path))
    return records


def read_meta(out_dir: str, kind: OwnedSetKind) -> Tuple[Optional[Dict], Optional[str]]:
    """(meta, None) for a meta this tool could have written, (None, why) for a broken one,
    (None, None) when there is none."""
    path = osp.join(out_dir, kind.meta_name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f'cannot be read ({e.strerror})'
    if not stat.S_ISREG(st.st_mode):
        return None, 'is not a regular file'
    if st.st_size > kind.max_meta_bytes:
        return None, f'is {st.st_size} bytes, larger than any this tool writes'
    try:
        with open(path, 'rb') as f:
            meta = json.loads(f.read())
    except OSError as e:
        return None, f'cannot be read ({e.strerror})'
    except ValueError as e:
        return None, f'is not valid JSON ({e})'
    problem = kind.meta_problem(meta)
    return (None, problem) if problem is not None else (meta, None)


def describe_entry(path: str, rel: str) -> str:
    """``rel`` with what it is, descending into a foreign directory to name a file in it."""
    for _ in range(32):
        if osp.islink(path):
            return f'{rel!r} (a symbolic link to {os.readlink(path)!r})'
        if not osp.isdir(path):
            return repr(rel) if osp.isfile(path) else f'{rel!r} (a special file)'
        try:
            names = sorted(os.listdir(path))
        except OSError:
            names = []
        if not names:
            return f'{rel + "/"!r} (a directory)'
        path, rel = osp.join(path, names[0]), f'{rel}/{names[0]}'
    return repr(rel)


def first_foreign(out_dir: str, kind: OwnedSetKind, params: Optional[Dict]) -> Optional[str]:
    """Describe the first entry of ``out_dir`` (sorted, depth first) the set of ``params``
    does not hold; ``params=None`` (no meta) owns nothing.

    Links are never followed and count as foreign even under an owned name, so what they
    point to is never at risk.
    """
    owned_files: Set[str] = set()
    owned_dirs: Set[str] = set()
    if params is not None:
        owned_files = set(kind.files(params)) | {kind.meta_name}
        owned_dirs = set(kind.dirs)
    return _first_foreign_below(out_dir, '', owned_files, owned_dirs)


def _first_foreign_below(out_dir: str, rel_dir: str, owned_files: Set[str],
                         owned_dirs: Set[str]) -> Optional[str]:
    """``first_foreign`` for the entries below ``rel_dir`` (only owned directories recurse)."""
    for name in sorted(os.listdir(osp.join(out_dir, *rel_dir.split('/')))):
        rel = f'{rel_dir}/{name}' if rel_dir else name
        path = osp.join(out_dir, *rel.split('/'))
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode) and rel in owned_files:
            continue
        if stat.S_ISDIR(mode) and rel in owned_dirs:
            found = _first_foreign_below(out_dir, rel, owned_files, owned_dirs)
            if found is not None:
                return found
            continue
        return describe_entry(path, rel)
    return None


def remove_owned_files(root: str, kind: OwnedSetKind, params: Dict) -> bool:
    """Delete the files of the set of ``params`` at ``root`` one by one (never a tree: what is
    not the set's stays), then its emptied directories; True when ``root`` itself is gone."""
    # Only below real directories: a directory swapped for a link is never entered.
    real_dirs = {''}
    for d in kind.dirs:
        path = osp.join(root, *d.split('/'))
        if (d.rpartition('/')[0] in real_dirs and osp.lexists(path)
                and stat.S_ISDIR(os.lstat(path).st_mode)):
            real_dirs.add(d)
    for rel in kind.files(params) + [kind.meta_name]:
        path = osp.join(root, *rel.split('/'))
        if (rel.rpartition('/')[0] in real_dirs and osp.lexists(path)
                and stat.S_ISREG(os.lstat(path).st_mode)):
            os.unlink(path)
    for d in reversed(kind.dirs):
        if d in real_dirs:
            try:
                os.rmdir(osp.join(root, *d.split('/')))
            except OSError:
                pass
    try:
        os.rmdir(root)
    except OSError:
        return False
    return True


def set_damage(out_dir: str, kind: OwnedSetKind, meta: Dict) -> Optional[str]:
    """What is wrong with the set at ``out_dir`` that ``meta`` describes, or None if intact:
    files missing or not regular, sizes, the kind's content checks, then SHA-256 digests."""
    expected = kind.files(meta['params'])
    recorded = meta.get('files')
    if recorded is not None and set(recorded) != set(expected):
        extra = sorted(set(recorded) ^ set(expected))[0]
        return f'{kind.meta_name} and the parameters disagree about {extra!r}'
    for rel in expected:
        try:
            st = os.lstat(osp.join(out_dir, *rel.split('/')))
        except FileNotFoundError:
            return f'{rel} is missing'
        if not stat.S_ISREG(st.st_mode):
            return f'{rel} is not a regular file'
        if recorded is not None:
            if not isinstance(recorded[rel], dict):
                return f'{kind.meta_name} has no valid record of {rel}'
            if st.st_size != recorded[rel].get('size'):
                return f'{rel} is {st.st_size} bytes, {recorded[rel].get("size")} were written'
    if kind.content_damage is not None:
        problem = kind.content_damage(out_dir, meta)
        if problem is not None:
            return problem
    if recorded is not None:
        for rel in expected:
            if sha256_file(osp.join(out_dir, *rel.split('/'))) != recorded[rel].get('sha256'):
                return f'{rel} differs from what was written (SHA-256)'
    return None


def new_sibling_dir(parent: str, tag: str) -> str:
    """Create and return a new uniquely named directory ``parent/.synthetic-<tag>XXXXXXXX``."""
    # os.mkdir rather than tempfile.mkdtemp: mkdtemp makes mode 0700, and this directory
    # becomes the set, which should get the umask's mode like any other directory.
    for _ in range(100):
        path = osp.join(parent, f'{TEMP_PREFIX}{tag}{secrets.token_hex(4)}')
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f'could not create a temporary directory in {parent}')


def public_summary(meta: Dict, action: str, **extra: object) -> Dict:
    """The meta without its per-file records (those are for verification), plus ``action``."""
    out = {k: v for k, v in meta.items() if k != 'files'}
    out.update(action=action, **extra)
    return out


def _param_changes(old: Dict, new: Dict, defaults: Mapping[str, object]) -> str:
    """``'name old -> new, ...'`` for every parameter that differs."""
    old_p, new_p = ({**defaults, **p} for p in (old, new))
    return ', '.join(f'{k} {old_p.get(k)!r} -> {v!r}'
                     for k, v in new_p.items() if old_p.get(k) != v)


def _swap_in(tmp: str, out_dir: str, tag: str) -> Tuple[str, str]:
    """Put ``tmp`` in place of ``out_dir``; return (holder, where the old set now is)."""
    # Move the old set aside, put the new one in place, then the caller deletes the old
    # set's own files; a file someone added meanwhile keeps its directory.
    holder = new_sibling_dir(osp.dirname(out_dir), f'{tag}old-')
    aside = osp.join(holder, 'set')
    try:
        os.rename(out_dir, aside)
        try:
            os.rename(tmp, out_dir)
        except BaseException:
            os.rename(aside, out_dir)
            raise
    except BaseException:
        os.rmdir(holder)
        raise
    return holder, aside


def write_owned_set(out_dir: str, kind: OwnedSetKind, params: Dict,
                    write: Callable[[str], Dict], force: bool = False) -> Dict:
    """Make ``out_dir`` hold the set of ``params`` (see the module docstring) and return its
    summary, ``action`` 'generated', 'reused', 'repaired' (with ``damage``) or 'replaced'.

    ``write(tmp)`` writes the set's files into the new directory ``tmp`` and returns the
    meta without ``files``; the per-file records are added here and the meta written.
    """
    # Resolve links so a link to a data disk gets the set there, and the swap below renames
    # real directories, never the link.
    out_dir = osp.realpath(out_dir)
    old_params: Optional[Dict] = None
    damage = None
    if osp.lexists(out_dir):
        if not osp.isdir(out_dir):
            raise ForeignContentError(f'{out_dir} exists and is not a directory')
        meta, problem = read_meta(out_dir, kind)
        if problem is not None:
            raise ForeignContentError(
                f'{osp.join(out_dir, kind.meta_name)} {problem}, so {out_dir} is not provably '
                'a set this tool wrote and is left alone (--force or not): delete it yourself '
                'or choose another output directory')
        if meta is not None and meta['params'] == params:
            damage = set_damage(out_dir, kind, meta)
            if damage is None:
                return public_summary(meta, 'reused')
        foreign = first_foreign(out_dir, kind, meta['params'] if meta is not None else None)
        if foreign is not None:
            raise ForeignContentError(
                f'{out_dir} holds {foreign}, which this tool did not write; it writes only '
                'into a new or empty directory or over a set it generated (--force replaces '
                'such a set, never other files): choose another output directory')
        if meta is not None and damage is None and not force:
            raise FileExistsError(
                f'{out_dir} holds a set generated with other parameters '
                f'({_param_changes(meta["params"], params, kind.param_defaults)}); pass '
                'force=True (--force) to replace it')
        old_params = meta['params'] if meta is not None else None
    parent = osp.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # makedirs' own message names only the path, not that a file is in the way.
        raise ForeignContentError(f'cannot create {out_dir}: a component of {parent} exists '
                                  'and is not a directory') from None
    tmp = new_sibling_dir(parent, kind.temp_tag)
    try:
        meta = write(tmp)
        # Sizes and digests of every file, so a later run can tell a damaged set.
        meta['files'] = file_records(tmp, kind.files(params))
        with open(osp.join(tmp, kind.meta_name), 'w') as f:
            json.dump(meta, f, indent=kind.meta_indent)
        if old_params is None:
            # Atomic; replaces an empty directory but fails (ENOTEMPTY) rather than replace
            # anything that appeared meanwhile.
            os.replace(tmp, out_dir)
            return public_summary(meta, 'generated')
        holder, aside = _swap_in(tmp, out_dir, kind.temp_tag)
    except BaseException:
        # tmp is the directory this call created and filled; nothing else is in it.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if remove_owned_files(aside, kind, old_params):
        os.rmdir(holder)
    else:
        warnings.warn(f'kept {holder}: the replaced set held files this tool did not write')
    if damage is not None:
        return public_summary(meta, 'repaired', damage=damage)
    return public_summary(meta, 'replaced')


__all__: Sequence[str] = ('ForeignContentError', 'OwnedSetKind', 'write_owned_set',
                          'read_meta', 'first_foreign', 'set_damage', 'remove_owned_files',
                          'file_records', 'sha256_file', 'new_sibling_dir', 'public_summary',
                          'describe_entry', 'TEMP_PREFIX')

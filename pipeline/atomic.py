"""Atomic writes: a reader sees the old file (or folder) or the new one, never a half-written one.

Every writer in the pipeline goes through these helpers: the new content is written to a temporary
sibling in the same folder (same file system), then moved onto the target with ``os.replace``, which is
atomic on POSIX and Windows. On any error the temporary file or folder is removed and the target is left
as it was.

:func:`file_lock` serialises first-time set-up across processes (two ``som evaluate`` starting at once on a
fresh workdir: the workdir, the store's first migration, the Dagster instance's databases).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created, mode 0600) while the block runs.

    ``fcntl.flock``: waits for the holder, and the OS releases the lock when its process dies, so a killed run
    never leaves a stale lock. Threads of one process are not serialised by it (each call opens its own file
    descriptor, and flock locks belong to the descriptor, so they do exclude each other on Linux). A no-op where
    ``fcntl`` is unavailable (not POSIX).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _special(target: Path) -> bool:
    """``target`` is under ``/dev`` or ``/proc``, or exists and is neither a regular file nor a folder: a device
    or a pipe (``/dev/null``, ``/dev/stdout``, a FIFO). Such a file is written into, never replaced — a rename
    would put a regular file in its place (as root, replacing ``/dev/null`` for the whole machine)."""
    if str(target.absolute()).startswith(("/dev/", "/proc/")):
        # /dev/stdout, /dev/fd/N, /proc/self/fd/N: links to whatever a descriptor is (a pipe, or a regular file
        # the shell redirected to) — never replaced, and no temporary file is made in /dev
        return True
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds, move it onto ``target``.

    The parent folder is created. The temporary file is removed if the block raises (the target is untouched).
    A device or pipe (``--json /dev/null``, a FIFO) is not replaced: the content is written into it, from a
    temporary file in the system's temporary folder (:func:`_special`).
    """
    target = Path(target)
    special = _special(target)
    if not special:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=None if special else target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if special:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(target: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``target`` atomically; returns ``target``."""
    with atomic_file(target) as tmp:
        write(tmp)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically; returns ``target``."""
    return write_atomic(target, lambda tmp: tmp.write_text(text, encoding=encoding))


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target``."""
    return write_atomic(target, lambda tmp: tmp.write_bytes(data))


@contextmanager
def staging_dir(parent: str | os.PathLike, prefix: str = ".staging-") -> Iterator[Path]:
    """A temporary folder inside ``parent`` (created), removed with whatever is left in it when the block ends.

    Use it to build several outputs and ``os.replace`` them into ``parent`` one by one (same file system).
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; when the block succeeds it replaces ``target`` whole.

    An existing ``target`` (folder or file) is removed just before the move, so readers see the old folder,
    then (for a moment) none, then the complete new one — never a partial folder. On error the staging
    folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    with staging_dir(target.parent, prefix=f".{target.name}-") as staging:
        yield staging
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(staging, target)

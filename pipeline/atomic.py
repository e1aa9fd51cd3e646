"""Atomic writes: a reader sees the old file (or folder) or the new one, never a half-written one.

Every writer in the pipeline goes through these helpers: the new content is written to a temporary
sibling in the same folder (same file system), then moved onto the target with ``os.replace``, which is
atomic on POSIX and Windows. On any error the temporary file or folder is removed and the target is left
as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds, move it onto ``target``.

    The parent folder is created. The temporary file is removed if the block raises (the target is untouched).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
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

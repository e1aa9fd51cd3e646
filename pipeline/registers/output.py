"""An ingest output folder that switches from the old output to the new one as a whole.

``som ingest --out OUT`` writes three files that belong together: ``panel.parquet``, ``treatments.parquet`` and
``ingest.json``. Replacing them one by one (each atomically) can leave a mixed output when the process is killed
between the renames. The layout therefore keeps every output in a version folder and switches one pointer::

    OUT/panel.parquet      -> .ingest/current/panel.parquet        (links, made once)
    OUT/treatments.parquet -> .ingest/current/treatments.parquet
    OUT/ingest.json        -> .ingest/current/ingest.json
    OUT/.ingest/current    -> v-20260101T120000-ab12cd              (the pointer)
    OUT/.ingest/v-…/                                                (complete versions)

Steps of :func:`publish` (each leaves every name showing one complete output):

1. ``stage``: the new files are written into ``.ingest/.tmp-…`` and the folder is renamed to ``v-…`` (a
   ``v-`` folder is always complete);
2. ``adopt`` (only when ``OUT`` still holds plain files from an earlier layout or a copy): the old files are
   hard-linked (or copied) into a version folder, ``current`` is pointed at it, and each plain file is replaced
   by its link — the content seen under every name stays the old output throughout;
3. ``switch``: a new link to the new version replaces ``current`` with one ``os.replace`` — the one moment the
   output changes, for all three names at once;
4. ``links``: missing links of the names are made (first output into an empty folder);
5. ``prune``: versions other than the current one and left-over temporary folders are removed.

A run killed at any point leaves the previous complete output (or, after step 3, the new one); a later run
finishes the adoption and prunes what was left. Two runs into the same folder take turns: the steps run under
an exclusive lock on ``.ingest/lock`` (``fcntl.flock``, released by the OS when a process dies), so one run's
pruning never removes the other's version. Readers open ``OUT/panel.parquet`` as before. Where the file
system cannot make symbolic links, the files are replaced one by one (:data:`FALLBACK`), as before this layout.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from pipeline.atomic import file_lock

VERSIONS = ".ingest"
CURRENT = "current"
#: how the last :func:`publish` switched: "pointer" or "files" (no symbolic links on this file system)
FALLBACK = "files"


def _step(name: str) -> None:
    """Called between the steps of :func:`publish` (tests interrupt the publication here)."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _link(target: str, at: Path) -> None:
    """Make ``at`` a symbolic link to ``target``, replacing whatever ``at`` is, in one ``os.replace``."""
    tmp = at.with_name(f".{at.name}.{secrets.token_hex(4)}.lnk")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, at)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_our_link(path: Path, name: str) -> bool:
    return path.is_symlink() and os.readlink(path) == f"{VERSIONS}/{CURRENT}/{name}"


def _stamp() -> str:
    return f"v-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(3)}"


def _symlinks_work(folder: Path) -> bool:
    probe = folder / f".probe-{secrets.token_hex(4)}"
    try:
        os.symlink("x", probe)
    except (OSError, NotImplementedError):
        return False
    probe.unlink()
    return True


def publish(out_dir: Path, names: tuple[str, ...], write: Callable[[Path], None]) -> str:
    """Write a new output with ``write(folder)`` (it must create every file of ``names`` in ``folder``) and switch
    ``out_dir`` to it as a whole (see the module docstring). Returns "pointer" or "files" (the fallback)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not _symlinks_work(out_dir):
        return _publish_files(out_dir, names, write)
    versions = out_dir / VERSIONS
    versions.mkdir(exist_ok=True)
    with file_lock(versions / "lock"):  # one run at a time publishes into this folder
        return _publish(out_dir, versions, names, write)


def _publish(out_dir: Path, versions: Path, names: tuple[str, ...], write: Callable[[Path], None]) -> str:
    staging = versions / f".tmp-{secrets.token_hex(6)}"
    staging.mkdir()
    try:
        write(staging)
        missing = [n for n in names if not (staging / n).is_file()]
        if missing:
            raise RuntimeError(f"ingest output incomplete: {', '.join(missing)} not written")
        for n in names:
            with open(staging / n, "rb") as fh:
                os.fsync(fh.fileno())
        new = versions / _stamp()
        os.rename(staging, new)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(versions)
    _step("stage")
    _adopt(out_dir, names)
    _step("adopt")
    _link(new.name, versions / CURRENT)  # the switch
    _fsync_dir(versions)
    _step("switch")
    for n in names:
        if not _is_our_link(out_dir / n, n):
            _link(f"{VERSIONS}/{CURRENT}/{n}", out_dir / n)
    _fsync_dir(out_dir)
    _step("links")
    prune(out_dir)
    return "pointer"


def _adopt(out_dir: Path, names: tuple[str, ...]) -> None:
    """Move plain output files (an earlier layout, or a copied folder) under the pointer without changing what
    any name shows."""
    plain = [n for n in names if (out_dir / n).exists() and not _is_our_link(out_dir / n, n)]
    if not plain:
        return
    versions = out_dir / VERSIONS
    current = versions / CURRENT
    if current.is_symlink():
        # An earlier adoption was interrupted after pointing ``current`` at the old files; the plain files left
        # still show that same output (hard links or copies of it).
        old = current.resolve()
    else:
        staging = versions / f".tmp-{secrets.token_hex(6)}"
        staging.mkdir()
        for n in names:
            src = out_dir / n
            if not src.exists():
                continue
            try:
                os.link(src.resolve(), staging / n)
            except OSError:
                shutil.copy2(src, staging / n)
        old = versions / _stamp()
        os.rename(staging, old)
        if current.exists() and not current.is_symlink():  # a copied output folder: ``current`` became a folder
            shutil.rmtree(current) if current.is_dir() else current.unlink()
        _link(old.name, current)
        _fsync_dir(versions)
    for n in plain:
        if (old / n).exists():
            _link(f"{VERSIONS}/{CURRENT}/{n}", out_dir / n)


def prune(out_dir: Path) -> None:
    """Remove versions other than the current one and temporary folders left by interrupted runs."""
    versions = Path(out_dir) / VERSIONS
    current = versions / CURRENT
    keep = os.readlink(current) if current.is_symlink() else None
    for p in versions.iterdir() if versions.is_dir() else ():
        if p.name in (CURRENT, "lock") or p.name == keep:
            continue
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.name.startswith(("v-", ".tmp-")):
            shutil.rmtree(p, ignore_errors=True)


def _publish_files(out_dir: Path, names: tuple[str, ...], write: Callable[[Path], None]) -> str:
    """The fallback without symbolic links: each file is replaced atomically, one after the other."""
    from pipeline.atomic import staging_dir

    with staging_dir(out_dir, prefix=".ingest-") as staging:
        write(staging)
        for n in names:
            os.replace(staging / n, out_dir / n)
    return FALLBACK

"""The code version recorded with every run: the package version plus the git commit when run from a checkout.

``package_version()`` is the installed distribution's version (``som-evaluation``). ``code_version()`` appends
``+g<commit>`` (and ``.dirty`` for uncommitted changes to tracked files) when the imported ``pipeline`` package
lives in a git work tree; an installed wheel (site-packages is no work tree) reports the package version alone.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "som-evaluation"


def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True).stdout.strip()


def source_checkout() -> Path | None:
    """The git work tree the ``pipeline`` package was imported from, or ``None`` (an installed package, no git)."""
    here = Path(__file__).resolve().parent
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], here)).resolve()
    except (OSError, subprocess.SubprocessError):
        return None
    # a wheel installed into a virtual environment that itself sits inside some git repository is no checkout
    return top if (top / "pipeline" / "version.py").resolve() == Path(__file__).resolve() else None


@lru_cache(maxsize=1)
def code_version() -> str:
    version = package_version()
    root = source_checkout()
    if root is None:
        return version
    try:
        commit = _git(["rev-parse", "--short=12", "HEAD"], root)
        dirty = _git(["status", "--porcelain", "--untracked-files=no"], root)
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}"

"""The code version recorded with every run: package version plus the git commit when available."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata

from pipeline.workdir import REPO_ROOT


@lru_cache(maxsize=1)
def code_version() -> str:
    try:
        version = metadata.version("som-evaluation")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{version}+g{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return version

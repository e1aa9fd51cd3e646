"""Digests used by the pipeline: file, several files, document content (delivery fingerprints, run data hashes,
parameter-version content hashes). The implementation is :mod:`som_models.hashing` (one for the project)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from som_models.hashing import canonical_json, content_hash, file_sha256, update_from_file

__all__ = ["canonical_json", "content_hash", "file_sha256", "files_sha256", "update_from_file"]


def files_sha256(*paths: Path | None) -> str:
    """Hex SHA-256 over the name and bytes of each given file, in order (``None`` entries are skipped).

    The data hash of a panel evaluation (panel file, then treatments file).
    """
    h = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        h.update(Path(path).name.encode("utf-8"))
        update_from_file(path, h)
    return h.hexdigest()

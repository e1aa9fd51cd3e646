"""SHA-256 digests: of a file (read in 1 MiB blocks) and of a JSON-like document (its canonical JSON text).

The one implementation of both for the project: the simulator's manifests, delivery fingerprints, data
hashes of evaluation runs and parameter-version content hashes all use these functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BLOCK = 1 << 20


def update_from_file(path: str | Path, *hashers: Any) -> None:
    """Feed the bytes of ``path`` (in ``BLOCK``-sized reads) to every hashlib object in ``hashers``."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            for h in hashers:
                h.update(block)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the bytes of ``path``."""
    h = hashlib.sha256()
    update_from_file(path, h)
    return h.hexdigest()


def canonical_json(doc: Any) -> str:
    """The canonical JSON text of a document: sorted keys, no whitespace, UTF-8 characters kept."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(doc: Mapping[str, Any]) -> str:
    """Hex SHA-256 of :func:`canonical_json` of ``doc`` (two documents with equal content hash equally)."""
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()

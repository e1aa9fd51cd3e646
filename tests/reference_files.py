"""Reference data kept beside the tests: every file is read only after its SHA-256 matches ``PROVENANCE.json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

REF = Path(__file__).parent / "reference"


def checked(folder: str, name: str) -> Path:
    """``tests/reference/{folder}/{name}``, after checking its hash against the folder's ``PROVENANCE.json``
    (the entry naming the file, else the folder's single entry; ``file_sha256`` or ``csv_sha256``)."""
    path = REF / folder / name
    entries = json.loads((REF / folder / "PROVENANCE.json").read_text())
    named = [e for e in entries if name in (e.get("file"), e.get("csv"))]
    entry = named[0] if named else entries[0]
    want = entry.get("file_sha256") or entry.get("csv_sha256")
    assert want and hashlib.sha256(path.read_bytes()).hexdigest() == want, f"{path}: hash differs from PROVENANCE.json"
    return path

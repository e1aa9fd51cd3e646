"""Keyed pseudonymisation of person numbers: ``person_id = HMAC-SHA256(key, PNR)[:16 hex]``.

The key comes from ``SOM_PSEUDONYM_KEY`` (hex) or from ``{workdir}/secrets/pseudonym.key``, created on first
use with 32 random bytes and mode 0600. The key is configuration: it is never written to any output.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import polars as pl


def load_key(workdir: Path) -> bytes:
    env = os.environ.get("SOM_PSEUDONYM_KEY", "").strip()
    if env:
        try:
            return bytes.fromhex(env)
        except ValueError:
            raise ValueError("SOM_PSEUDONYM_KEY must be hexadecimal") from None
    path = Path(workdir) / "secrets" / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def pseudonymise(pnr: pl.Series, key: bytes) -> pl.Series:
    """Map each PNR to its keyed pseudonym (hashing each distinct PNR once)."""
    uniq = pnr.unique().drop_nulls().to_list()
    table = {p: hmac.new(key, p.encode("utf-8"), hashlib.sha256).hexdigest()[:16] for p in uniq}
    return pnr.replace_strict(table, default=None, return_dtype=pl.Utf8)

"""Keyed pseudonymisation of person numbers: ``person_id = HMAC-SHA256(key, PNR)[:16 hex]``.

The key comes from ``SOM_PSEUDONYM_KEY`` (hex) or from ``{workdir}/secrets/pseudonym.key``, created on first
use with 32 random bytes and mode 0600. The key is configuration: it is never written to any output.
HMAC follows RFC 2104 (``H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))``); the padded key's two hash states are computed
once and copied per PNR, which gives the same digests as :func:`hmac.new` at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
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


def _hmac_states(key: bytes):
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def pseudonyms(pnrs: list[str], key: bytes) -> list[str]:
    """The keyed pseudonym of each PNR in ``pnrs`` (in order)."""
    inner, outer = _hmac_states(key)
    out = []
    for p in pnrs:
        i = inner.copy()
        i.update(p.encode("utf-8"))
        o = outer.copy()
        o.update(i.digest())
        out.append(o.hexdigest()[:16])
    return out


def pseudonymise(pnr: pl.Series, key: bytes) -> pl.Series:
    """Map each PNR to its keyed pseudonym (hashing each distinct PNR once)."""
    if pnr.null_count() == 0 and pnr.n_unique() == pnr.len():
        return pl.Series(pnr.name, pseudonyms(pnr.to_list(), key), dtype=pl.Utf8)
    uniq = pnr.unique().drop_nulls().to_list()
    table = dict(zip(uniq, pseudonyms(uniq, key)))
    return pnr.replace_strict(table, default=None, return_dtype=pl.Utf8)

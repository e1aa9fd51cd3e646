"""Keyed pseudonymisation of person numbers: ``person_id = HMAC-SHA256(key, PNR)[:16 hex]``.

The key (hex text, at least 16 bytes = 32 hex digits) comes from, in order:

1. ``SOM_PSEUDONYM_KEY`` — the key itself;
2. ``SOM_PSEUDONYM_KEY_FILE`` — a file holding it (a Docker/Kubernetes secret, e.g. ``/run/secrets/som_pseudonym_key``);
3. ``{workdir}/secrets/pseudonym.key`` — created on first use with 32 random bytes and mode 0600.

The third source suits one analyst on one machine only: every process that pseudonymises the same people
must use the same key, so a deployment with several processes or hosts must provide the key (1 or 2). It
says so with ``SOM_REQUIRE_PSEUDONYM_KEY=1`` (the deploy kit's compose file does), and a Dagster instance
on PostgreSQL (``$DAGSTER_HOME/dagster.yaml``) implies it; then a missing key is an error, never minted.
The key is configuration: it is never written to any output.
HMAC follows RFC 2104 (``H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))``); the padded key's two hash states are computed
once and copied per PNR, which gives the same digests as :func:`hmac.new` at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import polars as pl

KEY_ENV, KEY_FILE_ENV, REQUIRE_ENV = "SOM_PSEUDONYM_KEY", "SOM_PSEUDONYM_KEY_FILE", "SOM_REQUIRE_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16


class PseudonymKeyError(ValueError):
    """The pseudonymisation key is missing, unreadable or malformed (the message never contains the key)."""


def _parse(text: str, source: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise PseudonymKeyError(f"{source} must hold the key as hexadecimal text") from None
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"{source} holds a key of {len(key)} bytes; at least {MIN_KEY_BYTES} are required "
                                "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    return key


def _postgres_instance() -> bool:
    """Whether ``$DAGSTER_HOME/dagster.yaml`` puts the Dagster instance on PostgreSQL (a shared deployment)."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    path = Path(home) / "dagster.yaml" if home else None
    if path is None or not path.is_file():
        return False
    import yaml

    from som_reference.strict_yaml import load_yaml

    try:
        doc = load_yaml(path) or {}
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(doc, dict):
        return False
    storage = doc.get("storage")
    if isinstance(storage, dict) and "postgres" in storage:
        return True
    return any(isinstance(doc.get(k), dict) and "postgres" in str(doc[k].get("module", ""))
               for k in ("run_storage", "event_log_storage", "schedule_storage"))


def key_required() -> bool:
    """Whether the deployment says several processes pseudonymise (see the module docstring)."""
    flag = os.environ.get(REQUIRE_ENV, "").strip().lower()
    return flag in ("1", "true", "yes", "on") or _postgres_instance()


def load_key(workdir: Path) -> bytes:
    """The pseudonymisation key from the first source that is set (see the module docstring)."""
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        return _parse(env, KEY_ENV)
    key_file = os.environ.get(KEY_FILE_ENV, "").strip()
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise PseudonymKeyError(f"{KEY_FILE_ENV}={key_file}: cannot read the key file ({exc.strerror or exc})") from None
        return _parse(text, f"{KEY_FILE_ENV} ({key_file})")
    if key_required():
        raise PseudonymKeyError(
            f"no pseudonymisation key: this deployment runs several processes ({REQUIRE_ENV} or a PostgreSQL Dagster "
            f"instance), which must share one key; set {KEY_FILE_ENV} to a secret file (or {KEY_ENV}) — a per-workdir "
            "key is not created here")
    path = Path(workdir) / "secrets" / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            os.link(tmp, path)  # atomic and exclusive: a concurrent first use keeps the key that won
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return _parse(path.read_text(), str(path))


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
    table = dict(zip(uniq, pseudonyms(uniq, key), strict=False))
    return pnr.replace_strict(table, default=None, return_dtype=pl.Utf8)

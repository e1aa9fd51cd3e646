"""The landing folder: where Statistics Denmark deliveries are dropped, one sub-folder per delivery.

A delivery is *complete* when its ``manifest.json`` parses, every listed file is present and non-empty,
and — when the manifest carries ``sha256: {file: hex}`` — every file's checksum matches. Anything else is
*incomplete* (for example still being copied) and is skipped with a reason, never half-read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.hashing import file_sha256


@dataclass(frozen=True)
class LandedDelivery:
    folder: Path
    vintage: str | None
    complete: bool
    reason: str
    interventions: tuple[str, ...] | None = None
    fingerprint: str = ""


def inspect_delivery(folder: Path) -> LandedDelivery:
    """Check one delivery folder for completeness (see module docstring)."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return LandedDelivery(folder, None, False, f"{folder.name}: no manifest.json yet")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        vintage = str(doc["vintage"])
        files = list(doc["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return LandedDelivery(folder, None, False, f"{folder.name}: manifest.json is unreadable or lacks vintage/files")
    missing = [f for f in files if not (folder / f).is_file() or (folder / f).stat().st_size == 0]
    if missing:
        return LandedDelivery(folder, vintage, False, f"{folder.name}: {len(missing)} of {len(files)} listed file(s) missing or empty ({', '.join(missing[:3])})")
    checksums = doc.get("sha256") or {}
    bad = [f for f, digest in checksums.items() if f in files and file_sha256(folder / f) != str(digest).lower()]
    if bad:
        return LandedDelivery(folder, vintage, False, f"{folder.name}: checksum mismatch for {', '.join(bad[:3])} (still copying?)")
    stat = [(f, (folder / f).stat().st_size, int((folder / f).stat().st_mtime)) for f in sorted(files)]
    fingerprint = hashlib.sha256(json.dumps([manifest.read_text(encoding="utf-8"), stat]).encode()).hexdigest()[:16]
    interventions = tuple(doc["interventions"]) if isinstance(doc.get("interventions"), list) else None
    return LandedDelivery(folder, vintage, True, "complete", interventions, fingerprint)


def scan_landing(landing: Path) -> list[LandedDelivery]:
    """Every sub-folder of ``landing`` (sorted by name), complete or not."""
    landing = Path(landing)
    if not landing.is_dir():
        return []
    return [inspect_delivery(p) for p in sorted(landing.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def find_delivery(landing: Path, vintage: str) -> Path:
    """The complete delivery folder of ``vintage`` (the last by name if several); ValueError if none."""
    found = [d for d in scan_landing(landing) if d.complete and d.vintage == vintage]
    if not found:
        raise ValueError(f"no complete delivery with vintage {vintage!r} in the landing folder {landing}")
    return found[-1].folder

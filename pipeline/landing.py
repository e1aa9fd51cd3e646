"""The landing folder: where Statistics Denmark deliveries are dropped, one sub-folder per delivery.

A delivery is *complete* when its ``manifest.json`` parses (:func:`pipeline.registers.files.read_manifest`,
the one manifest parser), every listed file is present and non-empty, and — when the manifest carries
``sha256: {file: hex}`` — every file's checksum matches. Anything else is *incomplete* (for example still
being copied) and is skipped with a reason, never half-read.

Identity and order of deliveries:

* **fingerprint** — sha256 (first 16 hex) over the manifest's bytes and each listed file's name, size and
  modification time (whole seconds). Cheap to compute on every sensor tick; any rewrite of a file changes it.
  The content itself is identified by the *data hash* (:func:`pipeline.registers.files.delivery_hash`).
* **completion time** — the newest modification time of ``manifest.json`` and the listed files, i.e. when
  the delivery was last written.
* **rule for one vintage** — several complete folders can hold the same vintage (a corrected delivery is
  dropped next to the original). They are ordered by completion time, then by folder name when the times
  are equal; the **newest** one is the vintage's current delivery and each one *supersedes* the one before
  it. A run without an explicit folder (UI materialisation, backfill, schedule) evaluates the current one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.hashing import file_sha256
from pipeline.registers.files import DeliveryError, Manifest, read_manifest


@dataclass(frozen=True)
class LandedDelivery:
    """One sub-folder of the landing folder, complete or not (``reason`` says why not)."""

    folder: Path
    vintage: str | None
    complete: bool
    reason: str
    interventions: tuple[str, ...] | None = None
    fingerprint: str = ""
    completed_at: int = 0  # newest modification time (ns) of the manifest and listed files


def _reason(folder: Path, exc: DeliveryError) -> str:
    """The parser's message with the folder's name instead of the manifest's full path."""
    text = str(exc)
    for prefix in (f"{folder / 'manifest.json'}: ", f"{folder}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return f"{folder.name}: {text}"


def fingerprint_of(manifest: Manifest) -> tuple[str, int]:
    """(fingerprint, completion time in ns) of a parsed delivery (see the module docstring)."""
    paths = [manifest.folder / "manifest.json", *(manifest.folder / f for f in sorted(manifest.files))]
    stats = [p.stat() for p in paths]
    listing = [(p.name, s.st_size, int(s.st_mtime)) for p, s in zip(paths[1:], stats[1:], strict=False)]
    text = paths[0].read_text(encoding="utf-8")
    digest = hashlib.sha256(json.dumps([text, listing]).encode()).hexdigest()[:16]
    return digest, max(s.st_mtime_ns for s in stats)


def inspect_delivery(folder: Path, verified: frozenset[str] | set[str] = frozenset()) -> LandedDelivery:
    """Check one delivery folder for completeness (see the module docstring).

    ``verified`` holds fingerprints whose checksums were already verified (the sensor's cursor): for those the
    files are not read again, so a tick costs a ``stat`` per file for deliveries already seen.
    """
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        return LandedDelivery(folder, None, False, f"{folder.name}: no manifest.json yet")
    try:
        manifest = read_manifest(folder)
    except DeliveryError as exc:
        return LandedDelivery(folder, None, False, _reason(folder, exc))
    files = manifest.files
    empty = [f for f in files if (folder / f).stat().st_size == 0]
    if empty:
        return LandedDelivery(folder, manifest.vintage, False,
                              f"{folder.name}: {len(empty)} of {len(files)} listed file(s) empty ({', '.join(empty[:3])})")
    fingerprint, completed_at = fingerprint_of(manifest)
    if fingerprint not in verified:
        bad = [f for f, digest in manifest.sha256.items() if f in files and file_sha256(folder / f) != str(digest).lower()]
        if bad:
            return LandedDelivery(folder, manifest.vintage, False,
                                  f"{folder.name}: checksum mismatch for {', '.join(bad[:3])} (still copying?)")
    return LandedDelivery(folder, manifest.vintage, True, "complete", manifest.interventions, fingerprint, completed_at)


def scan_landing(landing: Path, verified: frozenset[str] | set[str] = frozenset()) -> list[LandedDelivery]:
    """Every sub-folder of ``landing`` (hidden ones excluded), complete or not, oldest first by the rule."""
    landing = Path(landing)
    if not landing.is_dir():
        return []
    found = [inspect_delivery(p, verified) for p in landing.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda d: (d.completed_at, d.folder.name))


def deliveries_of(landing: Path, vintage: str) -> list[LandedDelivery]:
    """The complete deliveries of ``vintage``, oldest first by the rule (the last one is current)."""
    return [d for d in scan_landing(landing) if d.complete and d.vintage == vintage]


def superseded_by(deliveries: list[LandedDelivery], delivery: LandedDelivery) -> LandedDelivery | None:
    """The delivery of the same vintage that ``delivery`` corrects (the one just before it by the rule), if any."""
    same = [d for d in deliveries if d.complete and d.vintage == delivery.vintage]
    at = next((i for i, d in enumerate(same) if d.folder == delivery.folder), None)
    return same[at - 1] if at else None


def find_delivery(landing: Path, vintage: str) -> Path:
    """The current delivery folder of ``vintage`` (the newest complete one by the rule); ValueError if none."""
    found = deliveries_of(landing, vintage)
    if not found:
        raise ValueError(f"no complete delivery with vintage {vintage!r} in the landing folder {landing}")
    return found[-1].folder

"""``ingest``: a delivery folder → ``panel.parquet``, ``treatments.parquet`` and ``ingest.json``, atomically.

Order: manifest → checksums (when the manifest carries ``sha256``) → every register read, typed and
validated with its GX suite → outcomes → the panel and treatments validated with ``expectations/panel.json``
and ``expectations/treatments.json`` → files written into a temporary folder inside ``out_dir`` and moved
into place with ``os.replace``. A refused delivery raises :class:`DeliveryError` before anything is moved,
so an earlier good panel in ``out_dir`` is left intact.

``ingest.json`` records the vintage, period, content hash of the delivery, files used and ignored, row
counts, the outcome columns and the column-mapping source — counts only, never a person number.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.quality.gx_runner import SUITE_DIR, load_suite
from pipeline.registers.config import ColumnMap
from pipeline.registers.files import DeliveryError, delivery_hash, read_manifest
from pipeline.registers.panel import PanelBuild, build_panel
from pipeline.registers.validate import describe, gx_max_rows, validate

OUTPUTS = ("panel.parquet", "treatments.parquet", "ingest.json")


@dataclass(frozen=True)
class IngestResult:
    out_dir: Path
    panel: Path
    treatments: Path
    summary: dict
    build: PanelBuild


def check_outputs(built: PanelBuild, *, max_gx_rows: int | None = None) -> None:
    """Validate the panel and treatments with the project's suites (blocking failures refuse the delivery)."""
    lines = []
    for frame, suite, source in ((built.panel, "panel", "panel (built from the delivery)"),
                                 (built.treatments, "treatments", "treatments (built from the delivery)")):
        report = validate(frame, load_suite(SUITE_DIR / f"{suite}.json"), max_gx_rows=max_gx_rows)
        lines += [ln.replace(f"{source}: ", f"{source}: ", 1) for ln in describe(report, [(source, frame.height)])]
    if lines:
        raise DeliveryError(lines[0], lines)


def ingest(delivery: Path, out_dir: Path, key: bytes, *, columns: ColumnMap | None = None,
           max_gx_rows: int | None = None) -> IngestResult:
    """Validate ``delivery`` and write its panel and treatments to ``out_dir`` (all or nothing)."""
    started = time.perf_counter()
    manifest = read_manifest(Path(delivery))
    data_hash = delivery_hash(manifest, verify=True)
    hashed = time.perf_counter()
    built = build_panel(manifest, key, columns, max_gx_rows=max_gx_rows)
    built_at = time.perf_counter()
    check_outputs(built, max_gx_rows=0 if built.registers.get("bef", 0) > gx_max_rows(max_gx_rows) else max_gx_rows)
    checked = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "vintage": manifest.vintage,
        "period_start": manifest.period_start.isoformat(),
        "period_end": manifest.period_end.isoformat(),
        "data_hash": data_hash,
        "files": list(manifest.files),
        "ignored_files": list(built.ignored),
        "rows": built.registers,
        "outcomes": list(built.outcomes),
        "column_map": (columns or ColumnMap()).source,
        "ingested": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 2),
        "stage_seconds": {"manifest_and_checksums": round(hashed - started, 3), **built.seconds,
                          "panel_checks": round(checked - built_at, 3)},
        "software": _version(),
    }
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=out_dir))
    try:
        write_started = time.perf_counter()
        built.panel.write_parquet(staging / "panel.parquet")
        built.treatments.write_parquet(staging / "treatments.parquet")
        summary["stage_seconds"]["write"] = round(time.perf_counter() - write_started, 3)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        (staging / "ingest.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        for name in OUTPUTS:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return IngestResult(out_dir, out_dir / "panel.parquet", out_dir / "treatments.parquet", summary, built)


def _version() -> str:
    from importlib import metadata

    try:
        return f"som-evaluation {metadata.version('som-evaluation')}"
    except metadata.PackageNotFoundError:
        return "som-evaluation (unknown version)"

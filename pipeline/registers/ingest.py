"""``ingest``: a delivery folder → ``panel.parquet``, ``treatments.parquet`` and ``ingest.json``, atomically.

One path, :func:`build_checked`, used by ``ingest`` and by the Dagster ``registers`` asset. Order: manifest →
checksums (when the manifest carries ``sha256``) → every register read, typed and validated with its suite →
outcomes → the panel and treatments validated with ``expectations/panel.json``
and ``expectations/treatments.json`` → the three files written into a new version folder inside ``out_dir`` and
switched in as a whole by one pointer (:mod:`pipeline.registers.output`), so a run killed at any moment leaves
the previous complete output. A refused delivery raises :class:`RefusedDelivery` (a :class:`DeliveryError`)
before anything is written, so an earlier good panel in ``out_dir`` is left intact.

``ingest.json`` records the vintage, period, content hash of the delivery, files used and ignored, row
counts, the outcome columns and the column-mapping source — counts only, never a person number.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.quality.engine import collect_reports, engine_for, gx_max_rows, validate
from pipeline.quality.gx_runner import SUITE_DIR, ValidationReport, load_suite
from pipeline.registers.config import REGISTERS, ColumnMap
from pipeline.registers.costs import check_delivery_costs
from pipeline.registers.files import DeliveryError, Manifest, delivery_hash, read_manifest
from pipeline.registers.panel import PanelBuild, build_panel
from pipeline.registers.validate import describe
from pipeline.version import code_version

OUTPUTS = ("panel.parquet", "treatments.parquet", "ingest.json")


@dataclass(frozen=True, eq=False)
class CheckedBuild:
    """A delivery built and validated: the panel build, the content hash (checksums verified) and every
    suite's report in the order evaluated (register suites, then ``panel`` and ``treatments``)."""

    build: PanelBuild
    data_hash: str
    validations: tuple[ValidationReport, ...]
    seconds: dict[str, float] = field(default_factory=dict)


class RefusedDelivery(DeliveryError):
    """A refused delivery (same message and ``lines`` as the underlying :class:`DeliveryError`) with the
    validation reports evaluated before the refusal, so every rule that ran can still be reported."""

    def __init__(self, error: DeliveryError, validations: tuple[ValidationReport, ...]) -> None:
        super().__init__(error.lines[0], error.lines)
        self.validations = tuple(validations)


@dataclass(frozen=True)
class IngestResult:
    out_dir: Path
    panel: Path
    treatments: Path
    summary: dict
    build: PanelBuild
    validations: tuple[ValidationReport, ...] = ()


def check_outputs(built: PanelBuild, *, max_gx_rows: int | None = None, kind: str = "registers") -> None:
    """Validate the panel and treatments with the project's suites (blocking failures refuse the delivery).

    For a handed-over panel (``kind`` ``panel``) the suites are restricted to what such a panel can be held
    to (:func:`pipeline.quality.handover.handover_suite`); the others are recorded as not applicable. For a
    register delivery, the outcome columns of a register that was neither delivered nor listed in the manifest
    are not demanded (:func:`pipeline.quality.handover.absent_register_suite`): the panel has no such column.
    """
    from pipeline.quality.engine import record
    from pipeline.quality.handover import absent_register_suite, handover_suite, not_applicable_report

    lines = []
    # The panel's values are checked on its compact frame when the polars engine runs (same values, a
    # fraction of the memory); GX (small frames) sees the canonical panel.
    panel = built.panel if engine_for(built.frame.height, max_gx_rows) == "gx" else built.frame
    for frame, suite, source in ((panel, "panel", "panel (built from the delivery)"),
                                 (built.treatments, "treatments", "treatments (built from the delivery)")):
        full = load_suite(SUITE_DIR / f"{suite}.json")
        if kind == "panel":
            spec, reasons = handover_suite(full, frame.columns)
        else:
            spec, reasons = absent_register_suite(full, frame.columns, _absent_outcomes(built))
        if reasons:
            record(not_applicable_report(full, reasons))
        report = validate(frame, spec, max_gx_rows=max_gx_rows)
        lines += describe(report, [(source, frame.height)])
    if lines:
        raise DeliveryError(lines[0], lines)


def _absent_outcomes(built: PanelBuild) -> dict[str, str]:
    """Outcome column → register, for the registers the build did not read (neither delivered nor listed: a
    listed register that is missing refuses the delivery earlier). DREAM yields every ``*_weeks`` column."""
    out: dict[str, str] = {}
    for name, reg in REGISTERS.items():
        if name in built.registers:
            continue
        for col in reg.outcomes:
            out[col] = name
    if "dream" not in built.registers:
        from pipeline.registers.config import dream_groups

        out.update({f"{g}_weeks": "dream" for g in dream_groups().groups})
    return out


def build_checked(manifest: Manifest | Path, key: bytes, columns: ColumnMap | None = None, *,
                  max_gx_rows: int | None = None) -> CheckedBuild:
    """The one ingestion path (``som ingest`` and the Dagster ``registers`` asset).

    manifest → checksums verified against the manifest's ``sha256`` entries → every register read, typed and
    validated with its suite → the panel and treatments built and validated with ``expectations/panel.json``
    and ``expectations/treatments.json`` (once BEF exceeds the GX row limit, every frame goes to the polars
    engine). A refusal raises :class:`RefusedDelivery` carrying the reports evaluated so far.
    """
    started = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(Path(manifest))
    import threading
    from concurrent.futures import ThreadPoolExecutor

    # The checksums are computed in a second thread while the registers are read (hashing and file reads release the
    # GIL). They still decide first: a file that does not match the manifest refuses the delivery with that reason
    # (and no check reports, as when they ran first), whatever the build made of the file meanwhile.
    with collect_reports() as reports, ThreadPoolExecutor(max_workers=1, thread_name_prefix="checksums") as pool:
        stop = threading.Event()
        hashing = pool.submit(delivery_hash, manifest, verify=True, stop=stop)
        try:
            check_delivery_costs(manifest)  # the cost file's rules (pipeline.registers.costs)
            built = build_panel(manifest, key, columns, max_gx_rows=max_gx_rows)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # Ctrl-C, SystemExit: stop hashing after the current file
                stop.set()
                raise
            _checksums(hashing)
            if isinstance(exc, DeliveryError):
                raise RefusedDelivery(exc, tuple(reports)) from exc
            raise
        data_hash = _checksums(hashing)
        built_at = time.perf_counter()
        try:
            large = built.registers.get("bef", 0) > gx_max_rows(max_gx_rows)
            check_outputs(built, max_gx_rows=0 if large else max_gx_rows, kind=manifest.kind)
        except DeliveryError as exc:
            raise RefusedDelivery(exc, tuple(reports)) from exc
    seconds = {**built.seconds, "costs_and_checksum_wait": round(built_at - started - sum(built.seconds.values()), 3),
               "panel_checks": round(time.perf_counter() - built_at, 3)}
    return CheckedBuild(built, data_hash, tuple(reports), seconds)


def _checksums(hashing) -> str:
    """The delivery hash from the checksum thread; a mismatch with the manifest refuses the delivery (reports: none)."""
    try:
        return hashing.result()
    except DeliveryError as exc:
        raise RefusedDelivery(exc, ()) from exc


def ingest(delivery: Path, out_dir: Path, key: bytes, *, columns: ColumnMap | None = None,
           max_gx_rows: int | None = None) -> IngestResult:
    """Validate ``delivery`` (:func:`build_checked`) and write its panel and treatments to ``out_dir`` (all or nothing)."""
    started = time.perf_counter()
    manifest = read_manifest(Path(delivery))
    checked = build_checked(manifest, key, columns, max_gx_rows=max_gx_rows)
    built = checked.build
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "vintage": manifest.vintage,
        "period_start": manifest.period_start.isoformat(),
        "period_end": manifest.period_end.isoformat(),
        "data_hash": checked.data_hash,
        "files": list(manifest.files),
        "ignored_files": list(built.ignored),
        "rows": built.registers,
        "outcomes": list(built.outcomes),
        "column_map": (columns or ColumnMap()).source,
        "ingested": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 2),
        "stage_seconds": dict(checked.seconds),
        "software": f"som-evaluation {code_version()}",
    }
    from pipeline.jsonio import dumps
    from pipeline.registers.output import publish

    def write(staging: Path) -> None:
        write_started = time.perf_counter()
        built.write_panel(staging / "panel.parquet")
        built.treatments.write_parquet(staging / "treatments.parquet")
        summary["stage_seconds"]["write"] = round(time.perf_counter() - write_started, 3)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        (staging / "ingest.json").write_text(dumps(summary), encoding="utf-8")

    publish(out_dir, OUTPUTS, write)
    return IngestResult(out_dir, out_dir / "panel.parquet", out_dir / "treatments.parquet", summary, built,
                        checked.validations)

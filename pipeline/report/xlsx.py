"""`som report --xlsx PATH`: the report's per-year, per-payer and per-udvalg tables as an Excel workbook.

Built from the report's JSON document (:func:`pipeline.report.build_report`), so the workbook and the report
cannot disagree. For each projected version (``evaluated``, and ``proposal`` when the run proposed one) the sheets
of :func:`pipeline.xlsx_export.projection_workbook` — the same writer as ``som project --xlsx`` — are added with
the version as prefix (``evaluated · Flows by year`` …), after a ``Report`` sheet naming the run; then the
report's own tables:

* ``Payers`` — NPV per payer under each version, payback year, P(NPV ≥ 0) and role;
* ``Udvalg`` — per udvalg: payer, NPV, undiscounted net, payback, role (and any further per-udvalg key the
  projection document carries);
* ``Udvalg by year`` — the cross-subsidy: discounted net per udvalg and year;
* ``Udvalg compared`` — NPV per udvalg under each version and the change (projected vs realised).

Amounts in kroner at the price year; savings positive, costs negative. Participants below the small-cell threshold
are written as ``suppressed (<min_cell)`` by the projection writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.atomic import write_atomic
from pipeline.report.decision import udvalg_extra_columns
from pipeline.xlsx_export import add_sheet, projection_workbook

VERSION_LABELS = {"before": "evaluated", "after": "proposal"}


def report_workbook(doc: Mapping[str, Any]) -> Any:
    """An openpyxl ``Workbook`` of the report document ``doc`` (sheets in the module docstring)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    min_cell = int(doc["min_cell"])
    add_sheet(wb, "Report", ("field", "value"), [
        ("intervention", doc["intervention"]), ("evaluation", doc["evaluation"]), ("run", doc["run_id"]),
        ("data vintage", doc["data_vintage"]), ("minimum cell size", min_cell),
        *((f"parameter version ({VERSION_LABELS.get(k, k)})", v) for k, v in doc.get("versions", {}).items()),
        ("sign convention", "kroner at the price year; savings positive, costs negative")]).column_dimensions["B"].width = 60
    for key, proj in doc["projections"].items():
        label = VERSION_LABELS.get(key, key)
        cohorts = [(y, n if n is not None else 0) for y, n in doc.get("cohorts", {}).get(key, [])]
        part = projection_workbook(proj, cohorts=cohorts, min_cell=min_cell)
        for ws in part.worksheets:
            values = list(ws.iter_rows(values_only=True))
            add_sheet(wb, f"{label} · {ws.title}"[:31], values[0] if values else (), values[1:])
    versions = list(doc["projections"])
    add_sheet(wb, "Payers", ["payer", *(f"NPV {VERSION_LABELS.get(k, k)} (kr)" for k in versions), "payback year",
                             "P(NPV ≥ 0)", "role"],
              ([r["payer"], *(r[f"npv_{k}"] for k in versions), r["payback"], r["p_break_even"], r["role"]]
               for r in doc["payers"]))
    rows = doc["udvalg"]
    extra = udvalg_extra_columns(rows)
    add_sheet(wb, "Udvalg", ["payer", "udvalg", "NPV (kr)", "net undiscounted (kr)", "payback year", "role",
                             "P(NPV ≥ 0)", *extra],
              ([r["payer"], r["udvalg"], r["npv"], r["nominal"], r["payback"], r["role"], r.get("p_break_even"),
                *(r.get(k) for k in extra)] for r in rows))
    by_year = doc["udvalg_by_year"]
    names = [k for k in (by_year[0] if by_year else {}) if k not in ("year", "total")]
    add_sheet(wb, "Udvalg by year", ["year", *names, "total"], ([r["year"], *(r[n] for n in names), r["total"]]
                                                                for r in by_year))
    if doc.get("udvalg_compare"):
        add_sheet(wb, "Udvalg compared", ["payer", "udvalg", *(f"NPV {VERSION_LABELS.get(k, k)} (kr)" for k in versions),
                                          "change (kr)"],
                  ([r["payer"], r["udvalg"], *(r.get(f"npv_{k}") for k in versions), r["change"]]
                   for r in doc["udvalg_compare"]))
    return wb


def write_report_xlsx(target: Path, doc: Mapping[str, Any]) -> Path:
    """Write :func:`report_workbook` to ``target`` atomically (a failed write leaves ``target`` untouched)."""
    wb = report_workbook(doc)
    return write_atomic(target, lambda tmp: wb.save(tmp))

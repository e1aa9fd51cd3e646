"""`som project --xlsx PATH`: the projection as an Excel workbook an analyst can put into a kommune's own model.

The workbook is built from the same document `som project --json` writes (one path: the JSON document and the
workbook cannot disagree), with the year × payer flows aggregated from its ``rows``:

* ``Summary`` — intervention, source, price year, discounting, success rate, ROI, PV of costs, the cohorts
  (participants below the small-cell threshold are written as ``suppressed (<min_cell)``,
  :mod:`pipeline.disclosure`), notes and warnings;
* ``Flows by year`` — per year the nominal and discounted net per payer and in total, and the cumulative
  discounted total (``Σ_t discounted[t, p]`` is the payer's NPV);
* ``Rows`` — year × payer × item, nominal and discounted (the JSON ``rows``);
* ``NPV and payback`` — NPV and payback year per payer and in total, with the Monte Carlo mean, p5, p95 and
  P(NPV ≥ 0) when draws were made ("no stake" for a payer with no flows);
* ``Break-even`` — the break-even success rate and cost per participant per payer (status, value, intercept,
  slope; :mod:`som_models.projection.breakeven`);
* ``Scenarios``, ``Discount sensitivity``, ``Cash view`` — the decision aids (:mod:`pipeline.xlsx_decision`);
* ``Udvalg`` — the udvalg ledger (:mod:`som_models.projection.ledger`): per account (payer, udvalg) its NPV,
  payback year, role (invests / gains), break-even success rate and cost per participant, and — with draws —
  the Monte Carlo mean and P(NPV ≥ 0) ("no stake" for a named udvalg with no flow in any draw);
* ``Udvalg by year`` / ``Udvalg by year (discounted)`` — the cross-subsidy table: one row per year, one column per
  account ``payer/udvalg`` (the JSON ``udvalg.by_year`` / ``udvalg.by_year_discounted``; a discounted column sums
  to the account's NPV, the accounts of a payer to the payer's).

Amounts are kroner at the document's price year, savings positive, costs negative — as in the JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.atomic import write_atomic
from pipeline.disclosure import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell, is_small

PAYERS = ("kommune", "region", "stat")
KEYS = (*PAYERS, "total")


def _sheet(wb: Any, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    from openpyxl.styles import Font

    ws = wb.create_sheet(title)
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(list(row))
    ws.freeze_panes = "A2"
    for k, name in enumerate(header):
        ws.column_dimensions[ws.cell(row=1, column=k + 1).column_letter].width = max(12, len(str(name)) + 2)
    return ws


def add_sheet(wb: Any, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    """A sheet ``title`` in ``wb`` with a bold, frozen header row and ``rows`` — the writer of every sheet here,
    for other workbooks too (``som report --xlsx``, :mod:`pipeline.report.xlsx`)."""
    return _sheet(wb, title, header, rows)


def flows_by_year(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per year of the horizon: nominal and discounted net per payer and in total, and the cumulative discounted
    total — aggregated from ``doc["rows"]`` (years without rows are 0)."""
    nominal: dict[tuple[int, str], float] = defaultdict(float)
    discounted: dict[tuple[int, str], float] = defaultdict(float)
    for r in doc["rows"]:
        nominal[(r["year"], r["payer"])] += r["amount"]
        discounted[(r["year"], r["payer"])] += r["discounted"]
    out, cum = [], 0.0
    for year in (c["year"] for c in doc["cumulative"]):
        row: dict[str, Any] = {"year": year}
        for p in PAYERS:
            row[p] = nominal.get((year, p), 0.0)
        row["total"] = sum(row[p] for p in PAYERS)
        for p in PAYERS:
            row[f"{p} discounted"] = discounted.get((year, p), 0.0)
        row["total discounted"] = sum(row[f"{p} discounted"] for p in PAYERS)
        cum += row["total discounted"]
        row["cumulative discounted"] = cum
        out.append(row)
    return out


def projection_workbook(doc: Mapping[str, Any], *, cohorts: Iterable[tuple[int, int]] = (),
                        min_cell: int = DEFAULT_MIN_CELL) -> Any:
    """An openpyxl ``Workbook`` of the `som project` JSON document ``doc`` (sheets in the module docstring);
    ``cohorts`` are (start year, participants), a count below ``min_cell`` is not written."""
    from openpyxl import Workbook

    min_cell = check_min_cell(min_cell)
    wb = Workbook()
    wb.remove(wb.active)
    summary: list[tuple[Any, Any]] = [
        ("intervention", doc["intervention"]), ("source", doc.get("source")), ("price year", doc.get("price_year")),
        ("discounting", doc.get("discounting")), ("success rate", doc["success_rate"]), ("ROI", doc.get("roi")),
        ("PV of intervention costs (kr)", doc.get("pv_costs")),
        ("sign convention", "kroner at the price year; savings positive, costs negative"),
    ]
    for year, n in cohorts:
        summary.append((f"cohort {year}: participants", SUPPRESSED.format(n=min_cell) if is_small(n, min_cell) else n))
    summary += [("note", n) for n in doc.get("notes", [])]
    summary += [("warning", w) for w in doc.get("warnings", [])]
    ws = _sheet(wb, "Summary", ("field", "value"), summary)
    ws.column_dimensions["B"].width = 60

    flows = flows_by_year(doc)
    header = ["year", *KEYS, *(f"{k} discounted" for k in KEYS), "cumulative discounted"]
    _sheet(wb, "Flows by year", header, ([r[h] for h in header] for r in flows))
    _sheet(wb, "Rows", ("year", "payer", "item", "amount", "discounted"),
           ((r["year"], r["payer"], r["item"], r["amount"], r["discounted"]) for r in doc["rows"]))

    mc = doc.get("monte_carlo")
    npv_header = ["payer", "NPV (kr)", "payback year"]
    if mc:
        npv_header += ["MC mean", "MC p5", "MC p95", "P(NPV ≥ 0)"]
    npv_rows = []
    for k in KEYS:
        payback = doc["payback_year"] if k == "total" else doc["payback_by_payer"].get(k)
        row: list[Any] = [k, doc["npv"][k], payback if payback is not None else "none within the horizon"]
        if mc:
            p = mc["prob_break_even"][k]
            row += [mc["mean"][k], mc["percentiles"][k]["p5"], mc["percentiles"][k]["p95"],
                    "no stake" if p is None else p]
        npv_rows.append(row)
    _sheet(wb, "NPV and payback", npv_header, npv_rows)

    be = doc.get("break_even")
    if be:
        be_rows = []
        for k in KEYS:
            s, c = be["success_rate"][k], be["cost_per_participant"][k]
            be_rows.append([k, s["status"], s["value"], s["intercept"], s["slope"], s["reachable"], s["ceiling"],
                            c["status"], c["value"], c["current"], c["intercept"], c["slope"]])
        _sheet(wb, "Break-even", ("payer", "success rate: status", "break-even success rate", "NPV at s = 0",
                                  "NPV per unit of s", "within [0, 1]", "ceiling (s ≤)", "cost: status",
                                  "break-even cost per participant (kr)", "cost per participant now (kr)",
                                  "NPV at zero cost", "NPV of the costs"), be_rows)

    from pipeline.xlsx_decision import add_decision_sheets

    add_decision_sheets(wb, doc)

    ledger = doc.get("udvalg")
    if ledger and ledger["accounts"]:
        _udvalg_sheets(wb, ledger, be, mc)
    return wb


def _udvalg_sheets(wb: Any, ledger: Mapping[str, Any], be: Mapping[str, Any] | None, mc: Mapping[str, Any] | None
                   ) -> None:
    """The ``Udvalg`` and ``Udvalg by year`` sheets of the JSON ``udvalg`` ledger (module docstring)."""
    header = ["payer", "udvalg", "NPV (kr)", "payback year", "role", "break-even success rate",
              "break-even success rate: status", "break-even cost per participant (kr)", "break-even cost: status"]
    if mc:
        header += ["MC mean", "P(NPV ≥ 0)"]
    rows = []
    for a in ledger["accounts"]:
        k = a["label"]
        pair = (be or {}).get("udvalg", {}).get(k)
        s, c = (pair["success_rate"], pair["cost_per_participant"]) if pair else ({}, {})
        row: list[Any] = [a["payer"], a["udvalg"], a["npv"],
                          a["payback_year"] if a["payback_year"] is not None else "none within the horizon", a["role"],
                          s.get("value"), s.get("status"), c.get("value"), c.get("status")]
        if mc:
            sim = mc.get("udvalg", {}).get(k)
            row += [sim["mean"], sim["prob_break_even"]] if sim else [None, "no stake"]
        rows.append(row)
    if mc:
        rows += [[k.split("/")[0], k.split("/", 1)[1], 0.0, "no flow", "neutral", None, "no_stake", None, "no_stake",
                  None, "no stake"] for k in mc.get("udvalg_no_stake", [])]
    _sheet(wb, "Udvalg", header, rows)
    labels = [a["label"] for a in ledger["accounts"]]
    for title, key in (("Udvalg by year", "by_year"), ("Udvalg by year (discounted)", "by_year_discounted")):
        _sheet(wb, title, ["year", *labels], ([r["year"], *(r[k] for k in labels)] for r in ledger[key]))


def write_projection_xlsx(target: Path, doc: Mapping[str, Any], *, cohorts: Iterable[tuple[int, int]] = (),
                          min_cell: int = DEFAULT_MIN_CELL) -> Path:
    """Write :func:`projection_workbook` to ``target`` atomically (a failed write leaves ``target`` untouched)."""
    wb = projection_workbook(doc, cohorts=cohorts, min_cell=min_cell)
    return write_atomic(target, lambda tmp: wb.save(tmp))

"""The HTML audit report: one self-contained file (inline CSS and PNG charts, no scripts, no CDN)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from pipeline.report.disclosure import suppress_small_cells
from pipeline.report.plots import cumulative_chart, effect_path_chart

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def collect_check_results(instance: Any, run_id: str) -> list[dict]:
    """Asset-check evaluations recorded in ``run_id`` (name, asset, passed, severity, counts)."""
    from dagster import DagsterEventType

    out = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        data = entry.dagster_event.event_specific_data
        meta = {k: getattr(v, "value", v) for k, v in (data.metadata or {}).items()}
        out.append({
            "asset": data.asset_key.to_user_string(), "check": data.check_name, "passed": bool(data.passed),
            "severity": getattr(data.severity, "value", str(data.severity)),
            "unexpected_count": meta.get("unexpected_count"), "element_count": meta.get("element_count"),
        })
    return sorted(out, key=lambda r: (r["asset"], r["check"]))


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return ""
    if isinstance(x, float):
        return f"{x:,.{digits}g}" if abs(x) < 1e5 else f"{x:,.0f}"
    return str(x)


def write_report(path: Path, *, spec, delivery: dict, assumptions: dict, estimates: pl.DataFrame, pretrends: pl.DataFrame,
                 verdicts: pl.DataFrame, proposal: dict, projections: dict, checks: list[dict], versions: list) -> Path:
    """Render and atomically write the report; returns its path."""
    min_cell = spec.min_cell
    verdict_rows = []
    charts = []
    for v in verdicts.to_dicts():
        evidence = json.loads(v["evidence"])
        path_rows = [p for p in evidence.get("path", []) if p.get("n_treated", min_cell) >= min_cell]
        suppressed = len(evidence.get("path", [])) - len(path_rows)
        small = evidence.get("n_treated", 0) < min_cell
        verdict_rows.append({**v, "realised_txt": "suppressed (<%d)" % min_cell if small else _fmt(v["realised"]),
                             "ci_txt": "" if small or v["ci_low"] is None else f"{_fmt(v['ci_low'])} to {_fmt(v['ci_high'])}",
                             "assumed_txt": _fmt(v["assumed"])})
        if path_rows and not small:
            title = "Success rate (consequence year 1)" if v["assumption"] == "success_rate" else f"Effect on {v['outcome']} per treated person"
            charts.append({"title": title, "img": effect_path_chart(title, evidence.get("unit", ""), path_rows), "suppressed": suppressed})
    est = estimates.filter(pl.col("estimand") != "att_gt").select(
        "outcome", "estimand", "event_time", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control")
    est_table = suppress_small_cells(est, count_columns=["n_treated", "n_control"],
                                     value_columns=["estimate", "se", "ci_low", "ci_high"], min_cell=min_cell)
    npv_rows = [{"parameters": k, **{p: _fmt(v["npv"][p]) for p in ("kommune", "region", "stat", "total")},
                 "payback": v["payback_year"] or "none", "success_rate": _fmt(v["success_rate"])} for k, v in projections.items()]
    series = {}
    for k, v in projections.items():
        rows = pl.DataFrame(v["rows"], schema={"year": pl.Int64, "payer": pl.Utf8, "item": pl.Utf8, "amount": pl.Float64, "discounted": pl.Float64})
        by_year = rows.group_by("year").agg(pl.col("discounted").sum()).sort("year").with_columns(pl.col("discounted").cum_sum().alias("cum"))
        series[k] = (by_year["year"].to_list(), by_year["cum"].to_list())
    html = _ENV.get_template("audit.html.j2").render(
        title=spec.title or spec.evaluation, spec=spec, generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        delivery=delivery, assumptions=assumptions, verdicts=verdict_rows, charts=charts,
        estimates=est_table.to_dicts(), estimate_columns=[c for c in est_table.columns if c != "suppressed"],
        pretrends=[{k: _fmt(x) for k, x in r.items()} for r in pretrends.to_dicts()], proposal=proposal,
        npv_rows=npv_rows, cumulative=cumulative_chart(series, {k: v["payback_year"] for k, v in projections.items()}),
        checks=checks, checks_failed=sum(not c["passed"] for c in checks), versions=versions, min_cell=min_cell,
        spec_text=json.dumps(dict(spec.document), indent=2, ensure_ascii=False),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path

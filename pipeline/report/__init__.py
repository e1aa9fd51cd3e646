"""The HTML audit report: one self-contained file (inline CSS and PNG charts; no scripts, fonts or CDN).

Output rules as on Statistics Denmark's servers: every count, estimate or chart point based on fewer than
``min_cell`` persons (the evaluation spec's ``min_cell``, default 5) is suppressed and marked as such; no
person-level row or person number appears anywhere.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from pipeline import jsonio
from pipeline.atomic import write_text_atomic
from pipeline.disclosure import SUPPRESSED, is_small, suppress_small_cells, suppress_verdict
from pipeline.report.data import ReportData, gather, load_checks, save_checks
from pipeline.report.plots import cumulative_chart, effect_path_chart, history_chart, monte_carlo_chart

MC_DRAWS = 4000
MC_SEED = 20260601

__all__ = ["ReportData", "collect_check_results", "gather", "load_checks", "render_report", "save_checks"]

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def collect_check_results(instance: Any, run_id: str) -> list[dict]:
    """Asset-check evaluations recorded in the Dagster run ``run_id`` (name, asset, passed, severity, counts)."""
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


def _pct_or_no_stake(p: float | None) -> str:
    """P(NPV ≥ 0) as a percentage; "no stake" for a payer on whom no flow falls (Monte Carlo gives None)."""
    return "no stake" if p is None else f"{p:.0%}"


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return ""
    if isinstance(x, float):
        return f"{x:,.{digits}g}" if abs(x) < 1e5 else f"{x:,.0f}"
    return str(x)


def _with_interval(point: dict, z: float) -> dict | None:
    """A path point with its pointwise interval (from ``se`` when the bounds are not stored); None if unusable."""
    if point.get("realised") is None:
        return None
    if point.get("ci_low") is None:
        se = point.get("se")
        if se is None or not se == se:
            return None
        point = {**point, "ci_low": point["realised"] - z * se, "ci_high": point["realised"] + z * se}
    return point


def _projection_rows(data: ReportData) -> dict:
    """NPV table, cumulative curves and the Monte Carlo (seeded) for the evaluated and the proposed version."""
    from som_models.parameters import parse_parameter_set
    from som_models.projection import monte_carlo, project

    versions = {"before": data.before}
    if data.after is not None:
        versions["after"] = data.after
    params = {k: parse_parameter_set(v.content) for k, v in versions.items()}
    projections = {k: project(p) for k, p in params.items()}
    sims = {k: monte_carlo(p, draws=MC_DRAWS, seed=MC_SEED) for k, p in params.items()}
    rows = [{"parameters": f"{k} (v{versions[k].version}, {versions[k].status})",
             **{p: _fmt(pr.npv[p]) for p in ("kommune", "region", "stat", "total")},
             "payback": pr.payback_year or "none", "success_rate": _fmt(pr.success_rate)} for k, pr in projections.items()]
    mc_rows = [{"parameters": k,
                **{p: _pct_or_no_stake(sims[k].prob_break_even[p]) for p in ("kommune", "region", "stat", "total")},
                "p5": _fmt(sims[k].percentiles["total"][5.0]), "p50": _fmt(sims[k].percentiles["total"][50.0]),
                "p95": _fmt(sims[k].percentiles["total"][95.0]),
                "unverified": params[k].describe_unverified() or "",
                "unverified_npv": {p: _fmt(v) for p, v in sims[k].unverified_npv.items()}} for k in sims]
    return {
        "npv_rows": rows,
        "cumulative": cumulative_chart(
            {k: (pr.cumulative["year"].to_list(), pr.cumulative["cumulative_discounted"].to_list()) for k,
             pr in projections.items()},
            {k: pr.payback_year for k, pr in projections.items()}),
        "mc_rows": mc_rows,
        "mc_draws": MC_DRAWS,
        "mc_chart": monte_carlo_chart({k: r.npv_draws[:, -1] for k, r in sims.items()},
                                      {k: r.prob_break_even["total"] for k, r in sims.items()}),
    }


def _profile_rows(data: ReportData) -> list[dict]:
    """Per consequence item and year: the evaluated and the proposed value (± SE), and whether the year was
    observed or is unverified (extrapolated beyond the data, :mod:`som_models.extrapolation`)."""
    if data.after is None:
        return []
    before, after = data.before.content.get("consequences", {}), data.after.content.get("consequences", {})
    rows = []
    for item, entry in after.items():
        if not isinstance(entry, dict):
            continue
        old = before.get(item)
        old_units = (old.get("units") if isinstance(old, dict) else old) or []
        unverified = set(entry.get("unverified") or ())
        ses = entry.get("se") or []
        course, old_course = entry.get("course") or {}, (old.get("course") if isinstance(old, dict) else None) or {}
        course_ses = course.get("se") or []
        for k, value in enumerate(course.get("units") or [], start=1):  # course years, per participant
            was = (old_course.get("units") or [])[k - 1] if k - 1 < len(old_course.get("units") or []) else None
            rows.append({"item": item, "year": f"course {k}", "before": _fmt(was), "after": _fmt(value),
                         "se": _fmt(course_ses[k - 1]) if k - 1 < len(course_ses) else "",
                         "status": "unchanged" if was == value else "updated from data"})
        for j, value in enumerate(entry.get("units") or [], start=1):
            was = old_units[j - 1] if j - 1 < len(old_units) else None
            rows.append({"item": item, "year": j, "before": _fmt(was), "after": _fmt(value),
                         "se": _fmt(ses[j - 1]) if j - 1 < len(ses) else "",
                         "status": "unverified (extrapolated)" if j in unverified else
                         ("unchanged" if was == value else "updated from data")})
    return rows


def _volume_rows(verdicts: tuple[dict, ...], min_cell: int) -> dict:
    """The volume section: participants per cohort year (assumed vs realised, small cells suppressed) and what the
    course-length and cost checks rested on (:mod:`som_models.volume_verdicts`)."""
    by = {v["assumption"]: v for v in verdicts if (v.get("evidence") or {}).get("kind") == "volume"}
    mark = SUPPRESSED.format(n=min_cell)
    cohorts = []
    part = by.get("participants")
    for r in ((part or {}).get("evidence") or {}).get("cohorts", []):
        if not r["assumed"] and not r["realised"]:
            continue
        small = is_small(r["realised"], min_cell) and r["realised"] != 0
        cohorts.append({"year": r["year"], "assumed": r["assumed"], "realised": mark if small else r["realised"],
                        "ratio": "" if small or not r["assumed"] else f"{r['realised'] / r['assumed']:.2f}"})
    later = ((part or {}).get("evidence") or {}).get("not_yet_observed", [])
    notes = []
    course = (by.get("course_years") or {}).get("evidence") or {}
    if course:
        notes.append(f"Course length: {course.get('measured_by') or 'not measured'}; completed cohorts "
                     f"{', '.join(map(str, course.get('complete_cohorts') or [])) or 'none'}"
                     + (f"; cohorts with courses still running left out: "
                        f"{', '.join(map(str, course['incomplete_cohorts']))}" if course.get("incomplete_cohorts") else ""))
    cost = (by.get("cost_per_participant") or {}).get("evidence") or {}
    if cost:
        notes.append("Cost per participant: " + ("no cost file in the delivery or the spec" if cost.get("gate") ==
                                                 "not-observed" else f"cost file, {cost.get('unit', '')}"
                                                 + (" (converted from other price years)" if cost.get("converted_price_year")
                                                    else "")))
    return {"volume_verdicts": [v for v in verdicts if v["assumption"] in by], "cohorts": cohorts,
            "cohorts_later": later, "volume_notes": notes}


def _plan_rows(data: ReportData, plan: dict | None, verdicts: list[dict]) -> tuple[list[dict], int | None]:
    """Planned vs realised standard error per assumption (the stored plan of the tested version, at the last planned
    vintage not after the delivery's last register year); small cells stay suppressed."""
    if not plan or data.estimates.is_empty():
        return [], None
    year = data.estimates.get_column("time").drop_nulls().max()
    if year is None:
        return [], None
    rows = []
    for a in plan.get("assumptions", []):
        v = next((x for x in verdicts if x["assumption"] == a["assumption"]), None)
        cands = [r for r in a.get("vintages", []) if r["vintage"] <= int(year)]  # type: ignore[call-overload]
        if v is None or not cands or a.get("kind") != "effect":
            continue
        r = cands[-1]
        se = (v.get("evidence") or {}).get("se")
        small = v.get("realised_txt") == SUPPRESSED.format(n=data.min_cell)
        rows.append({"assumption": a["assumption"], "vintage": r["vintage"], "planned": _fmt(r["se"]),
                     "realised": "" if se is None or small else _fmt(se),
                     "ratio": "" if se is None or small or not r["se"] else f"{se / r['se']:.2f}",
                     "refute": a.get("refutable_from") or "not planned", "confirm": a.get("confirmable_from") or "not planned"})
    return rows, int(year)  # type: ignore[call-overload]


def render_report(data: ReportData, path: Path, *, workdir: Path | None = None) -> Path:
    """Render ``data`` and write the HTML atomically; returns the path. With ``workdir`` the stored plan of the
    tested version (``som plan``) is shown against the realised precision."""
    from pipeline.alerts import run_alerts
    from pipeline.plan import load_plan
    from som_models.estimators import z_value

    m = data.min_cell
    mark = SUPPRESSED.format(n=m)
    z = z_value(float(data.spec.get("alpha", 0.05)))
    verdict_rows, charts = [], []
    for raw in data.verdicts:
        v = suppress_verdict(raw, m)
        evidence = v.get("evidence") or {}
        small = is_small(evidence.get("n_treated"), m)
        verdict_rows.append({**v, "assumed_txt": _fmt(v["assumed"]),
                             "realised_txt": mark if small else _fmt(v["realised"]),
                             "ci_txt": "" if small or v["ci_low"] is None else f"{_fmt(v['ci_low'])} to {_fmt(v['ci_high'])}"})
        path_rows = [_with_interval(p, z) for p in evidence.get("path", []) if not p.get("suppressed")]
        path_rows = [p for p in path_rows if p is not None]
        hidden = len(evidence.get("path", [])) - len(path_rows)
        if path_rows and not small:
            title = ("Success rate (consequence year 1)" if v["assumption"] == "success_rate"
                     else f"Effect on {v['outcome']} per participant during the course"
                     if v["assumption"].startswith("course_path:") else f"Effect on {v['outcome']} per treated person")
            charts.append({"title": title, "img": effect_path_chart(title, evidence.get("unit", ""), path_rows),
                           "suppressed": hidden})
    held = []
    for assumption in dict.fromkeys(h["assumption"] for h in data.history):
        rows = [h for h in data.history if h["assumption"] == assumption]
        shown = [h for h in rows if h["realised"] is not None and h["ci_low"] is not None and not is_small(h["n_treated"], m)]
        held.append({
            "assumption": assumption,
            "img": history_chart(f"{assumption}: realised vs assumed by data vintage", shown) if shown else None,
            "rows": [{"vintage": h["vintage"], "run": h["run_id"][:8], "label": h["label"], "assumed": _fmt(h["assumed"]),
                      "realised": mark if is_small(h["n_treated"], m) else _fmt(h["realised"]),
                      "ci": "" if is_small(h["n_treated"],
                                           m) or h["ci_low"] is None else f"{_fmt(h['ci_low'])} to {_fmt(h['ci_high'])}",
                      "tested": f"v{h['tested_version']}" if h.get("tested_version") else "",
                      "look": "" if h.get("look") is None else f"{h['look']} (t = {h['information_fraction']:.2f})",
                      "flag": h.get("flag"), "replaces": h.get("replaces") or []}
                     for h in rows],
        })
    est = data.estimates.filter(pl.col("estimand") != "att_gt").select(
        "outcome", "estimand", "event_time", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control")
    est_table = suppress_small_cells(est, count_columns=["n_treated", "n_control"],
                                     value_columns=["estimate", "se", "ci_low", "ci_high"], min_cell=m)
    proj = _projection_rows(data)
    content = (data.after or data.before).content if (data.after or data.before) is not None else None
    alerts = [a.to_dict() for a in run_alerts(data.spec, data.verdicts, content, data.history, data.run.id)]
    plan = load_plan(workdir, data.intervention, getattr(data.before, "version", None))
    plan_rows, plan_year = _plan_rows(data, plan, verdict_rows)
    html = _ENV.get_template("audit.html.j2").render(
        alerts=alerts, plan_rows=plan_rows, plan_year=plan_year,
        plan_source=(plan or {}).get("variance_source", ""),
        title=data.title, data=data, run=data.run, generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        verdicts=verdict_rows, charts=charts, held=held, **_volume_rows(tuple(verdict_rows), m),
        estimates=est_table.to_dicts(), estimate_columns=[c for c in est_table.columns if c != "suppressed"],
        **proj, profiles=_profile_rows(data),
        checks=list(data.checks), checks_failed=sum(not c["passed"] for c in data.checks), min_cell=m,
        spec_text=jsonio.dumps(data.spec, fallback=str),
        alpha=data.spec.get("alpha", 0.05), margin=data.spec.get("equivalence_margin", 0.5),
    )
    return write_text_atomic(path, html)

"""The HTML audit report: one self-contained file (inline CSS and inline SVG charts; no scripts, fonts or CDN),
in Danish by default and in English on request (one template, the message catalogue :mod:`pipeline.report.i18n`).

What it shows, in this order: alerts (the spec's ``alerts:``), failed data checks and projection warnings; a
one-page summary in plain language (what was assumed → what the registers show → what changed → who gains and who
pays, per payer and per udvalg); the verdicts; the payer and udvalg tables (:mod:`pipeline.report.decision`); the
version diff; effect paths; volumes; the evaluation plan with realised against planned precision; the history over
data vintages; realised effects; the projection and its Monte Carlo; methods, data and limitations (price year,
discount rate, horizon); the data checks (passed ones collapsed); a glossary; provenance.

Output rules as on Statistics Denmark's servers: every count, estimate or chart point based on fewer than
``min_cell`` persons (the evaluation spec's ``min_cell``, default 5) is suppressed and marked as such; no
person-level row or person number appears anywhere; every text is HTML-escaped (Jinja autoescape).

:func:`build_report` returns the HTML and the report's JSON document (the per-year, per-payer and per-udvalg
tables); :func:`render_report` writes the HTML; :func:`pipeline.report.xlsx.write_report_xlsx` writes the same
tables as a workbook.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
from markupsafe import Markup

from pipeline import jsonio
from pipeline.atomic import write_text_atomic
from pipeline.disclosure import SUPPRESSED, is_small, suppress_small_cells, suppress_verdict
from pipeline.report import decision
from pipeline.report.data import ReportData, gather, load_checks, save_checks
from pipeline.report.i18n import (
    DEFAULT_LANGUAGE,
    check_language,
    discounting_text,
    glossary,
    number,
    outcome_unit,
    translator,
)
from pipeline.report.plots import cumulative_chart, effect_path_chart, history_chart, monte_carlo_chart
from som_models.projection.frame import UNASSIGNED

MC_DRAWS = 4000
MC_SEED = 20260601

__all__ = ["Report", "ReportData", "build_report", "collect_check_results", "gather", "load_checks", "render_report",
           "save_checks"]

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True, eq=False)
class Report:
    """A built report: the ``html`` text and its JSON ``document`` (per-year, per-payer, per-udvalg tables)."""

    html: str
    document: dict


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


def _fmt(x: Any, digits: int = 4) -> str:
    """A technical figure to ``digits`` significant figures (whole kroner from 100,000); '' for None/NaN."""
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



def _projections(data: ReportData) -> tuple[dict[str, Any], dict[str, dict], dict[str, Any]]:
    """The evaluated (``before``) and proposed (``after``) versions: parsed parameters, their projection documents
    (as ``som project --json`` with a seeded Monte Carlo of :data:`MC_DRAWS` draws) and the Monte Carlo results."""
    from som_models.parameters import parse_parameter_set
    from som_models.projection import break_even, monte_carlo, project
    from som_models.projection.document import projection_document

    versions = {"before": data.before}
    if data.after is not None:
        versions["after"] = data.after
    params = {k: parse_parameter_set(v.content) for k, v in versions.items()}
    sims = {k: monte_carlo(p, draws=MC_DRAWS, seed=MC_SEED) for k, p in params.items()}
    docs = {k: projection_document(project(p), break_even(p), sims[k],
                                   source=f"{data.intervention} version {versions[k].version}")
            for k, p in params.items()}
    return params, docs, sims


def _projection_rows(data: ReportData, docs: dict[str, dict], sims: dict[str, Any], t) -> dict:
    """NPV table, cumulative curves and the Monte Carlo for the evaluated and the proposed version."""
    versions = {"before": data.before, "after": data.after}
    rows = [{"parameters": f"{t('v_' + k)} (v{versions[k].version}, {versions[k].status})",
             **{p: _fmt(d["npv"][p]) for p in decision.KEYS},
             "payback": d["payback_year"] or t("none_within"), "success_rate": _fmt(d["success_rate"])}
            for k, d in docs.items()]
    mc_rows = []
    for k, r in sims.items():
        mc_rows.append({"parameters": t("v_" + k),
                        **{p: t("no_stake") if r.prob_break_even[p] is None else f"{r.prob_break_even[p]:.0%}"
                           for p in decision.KEYS},
                        "p5": _fmt(r.percentiles["total"][5.0]), "p50": _fmt(r.percentiles["total"][50.0]),
                        "p95": _fmt(r.percentiles["total"][95.0]),
                        "unverified": ", ".join(f"{item} ({min(ys)}–{max(ys)})" for item, ys in r.unverified.items()),
                        "unverified_npv": {p: _fmt(v) for p, v in r.unverified_npv.items()}})
    return {
        "npv_rows": rows,
        "cumulative": Markup(cumulative_chart(
            {k: ([c["year"] for c in d["cumulative"]], [c["cumulative_discounted"] for c in d["cumulative"]])
             for k, d in docs.items()}, {k: d["payback_year"] for k, d in docs.items()}, t)),
        "mc_rows": mc_rows,
        "mc_draws": MC_DRAWS,
        "mc_chart": Markup(monte_carlo_chart({k: r.npv_draws[:, -1] for k, r in sims.items()},
                                             {k: r.prob_break_even["total"] for k, r in sims.items()}, t)),
    }


def _profile_rows(data: ReportData, t) -> list[dict]:
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
            rows.append({"item": item, "year": t("course_year", k=k), "before": _fmt(was), "after": _fmt(value),
                         "se": _fmt(course_ses[k - 1]) if k - 1 < len(course_ses) else "", "unverified": False,
                         "status": t("status_unchanged") if was == value else t("status_updated")})
        for j, value in enumerate(entry.get("units") or [], start=1):
            was = old_units[j - 1] if j - 1 < len(old_units) else None
            rows.append({"item": item, "year": j, "before": _fmt(was), "after": _fmt(value),
                         "se": _fmt(ses[j - 1]) if j - 1 < len(ses) else "", "unverified": j in unverified,
                         "status": t("status_unverified") if j in unverified else
                         (t("status_unchanged") if was == value else t("status_updated"))})
    return rows


def _volume_rows(verdicts: tuple[dict, ...], min_cell: int, mark: str) -> dict:
    """The volume section: participants per cohort year (assumed vs realised, small cells suppressed) and what the
    course-length and cost checks rested on (:mod:`som_models.volume_verdicts`)."""
    by = {v["assumption"]: v for v in verdicts if (v.get("evidence") or {}).get("kind") == "volume"}
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


def _planned_at(assumption: dict, year: int) -> dict | None:
    """The plan's row of ``assumption`` at the last planned vintage not after register year ``year``."""
    cands = [r for r in assumption.get("vintages", []) if r["vintage"] <= year]
    return cands[-1] if cands else None


def _plan_rows(data: ReportData, plan: dict | None, verdicts: list[dict]) -> tuple[list[dict], int | None]:
    """Planned vs realised standard error per assumption (:func:`pipeline.plan.realised_vs_planned`: the stored plan
    of the tested version at the last planned vintage not after the delivery's last register year); small cells
    stay suppressed."""
    from pipeline.plan import realised_vs_planned

    year = data.register_years.get(data.run.id)
    if not plan or year is None:
        return [], None
    by_name = {a["assumption"]: a for a in plan.get("assumptions", [])}
    rows = []
    for r in realised_vs_planned(plan, verdicts, int(year), min_cell=data.min_cell):
        a = by_name[r["assumption"]]
        rows.append({"assumption": r["assumption"], "vintage": r["vintage"], "planned": _fmt(r["planned_se"]),
                     "realised": "" if r["realised_se"] is None else _fmt(r["realised_se"]),
                     "ratio": "" if r["ratio"] is None else f"{r['ratio']:.2f}",
                     "refute": a.get("refutable_from"), "confirm": a.get("confirmable_from"),
                     "undecidable": a.get("undecidable") or []})
    return rows, year


def _plan_overview(plan: dict | None, year: int | None) -> list[dict]:
    """The stored plan per assumption: when it is refutable/confirmable, the planned se and minimum detectable
    deviation at the delivery's register year (else the first planned vintage), and the value of information."""
    if not plan:
        return []
    decidable = {d["assumption"]: d for d in plan.get("decidable", [])}
    out = []
    for a in plan.get("assumptions", []):
        rows = a.get("vintages", [])
        at = (_planned_at(a, year) if year is not None else None) or (rows[0] if rows else None)
        d = decidable.get(a["assumption"], {})
        out.append({"assumption": a["assumption"], "refute": a.get("refutable_from"), "confirm": a.get("confirmable_from"),
                    "undecidable": a.get("undecidable") or [],
                    "vintage": at["vintage"] if at else "", "se": _fmt(at["se"]) if at else "",
                    "mdd": _fmt(at["mdd"]) if at else "", "evppi": d.get("evppi_total")})
    return out


def _plan_history(data: ReportData, workdir: Path | None) -> list[dict]:
    """Per data vintage and effect assumption: the realised se (history point; withheld when suppressed) against the
    planned se of the tested version's stored plan at that run's last register year."""
    from pipeline.plan import load_plan

    plans: dict[Any, dict | None] = {}
    out = []
    for h in data.history:
        year = data.register_years.get(h["run_id"])
        version = h.get("tested_version")
        if version not in plans:
            plans[version] = load_plan(workdir, data.intervention, version)
        plan = plans[version]
        a = next((x for x in (plan or {}).get("assumptions", []) if x["assumption"] == h["assumption"]), None)
        if a is None or year is None or a.get("kind") != "effect":
            continue
        r = _planned_at(a, year)
        if r is None:
            continue
        se = None if h.get("suppressed") or is_small(h.get("n_treated"), data.min_cell) else h.get("se")
        out.append({"vintage": h["vintage"], "assumption": h["assumption"], "tested": f"v{version}",
                    "year": year, "planned": _fmt(r["se"]), "realised": _fmt(se),
                    "ratio": "" if se is None or not r["se"] else f"{se / r['se']:.2f}"})
    return out


def _assumed_participants(content: dict) -> int:
    return int(sum(c.get("participants", 0) for c in content.get("cohorts", [])))


def _sample(data: ReportData, m: int, mark: str) -> dict[str, Any]:
    """Register period, persons and the treated / comparison persons of the overall estimates (small ones withheld)."""
    window = (data.after.evidence_window if data.after is not None else None) or {}
    est = data.estimates
    times = [x for x in est.get_column("time").to_list() if x is not None] if est.height else []
    overall = est.filter(pl.col("estimand") == "overall") if est.height else est
    n_t = max((x for x in overall.get_column("n_treated").to_list() if x is not None), default=None) if overall.height else None
    n_c = max((x for x in overall.get_column("n_control").to_list() if x is not None), default=None) if overall.height else None
    persons = window.get("persons")
    return {"first": window.get("first_year") or (min(times) if times else None),
            "last": window.get("last_year") or (max(times) if times else None),
            "persons": None if persons is None else (mark if is_small(persons, m) else persons),
            "treated": None if n_t is None else (mark if is_small(n_t, m) else n_t),
            "control": None if n_c is None else (mark if is_small(n_c, m) else n_c)}


def _method(data: ReportData, doc: dict, t, lang: str) -> list[tuple[str, str]]:
    """Methods, data and limitations as (label, text) rows (module docstring)."""
    spec = data.spec
    design = spec.get("design")
    if isinstance(design, dict):
        design_txt = ", ".join(f"{k}: {v}" for k, v in design.items())
    else:
        design_txt = ", ".join(f"{k}: {spec[k]}" for k in ("design", "control", "base_period", "method", "covariates")
                               if spec.get(k) is not None)
    assignment = next(((v.get("evidence") or {}).get("assignment") for v in data.verdicts
                       if (v.get("evidence") or {}).get("assignment")), None)
    if assignment:
        inference = t("m_clusters", clusters=assignment.get("clusters"), level=assignment.get("level"),
                      treated=assignment.get("treated_clusters"), few=t("m_few") if assignment.get("few_clusters") else "")
    else:
        inference = t("m_person")
    sample = _sample(data, data.min_cell, t("suppressed", n=data.min_cell))
    years = [c["year"] for c in doc.get("cumulative", [])]
    content = (data.after or data.before).content
    tested = {v["assumption"] for v in data.verdicts}
    expected = ["success_rate"]
    for item, entry in (content.get("consequences") or {}).items():
        expected.append(f"effect_path:{item}")
        if isinstance(entry, dict) and entry.get("course"):
            expected.append(f"course_path:{item}")
    expected += ["participants", "course_years", "cost_per_participant"]
    not_tested = [a for a in expected if a not in tested]
    limits = []
    unverified = {item: e.get("unverified") for item, e in (content.get("consequences") or {}).items()
                  if isinstance(e, dict) and e.get("unverified")}
    if unverified:
        limits.append(t("limit_unverified", items="; ".join(f"{k} ({min(v)}–{max(v)})" for k, v in unverified.items())))
    n_inc = sum(v["label"] == "inconclusive" for v in data.verdicts)
    if n_inc:
        limits.append(t("limit_inconclusive", n=n_inc))
    limits += [t("limit_descriptive"), t("limit_prices")]
    if lang == "da":
        limits.append(t("limit_english"))
    return [
        (t("m_period"), f"{sample['first'] or ''}–{sample['last'] or ''}"),
        (t("m_vintage"), str(data.run.data_vintage)),
        (t("m_persons"), number(sample["persons"], lang) if sample["persons"] is not None else ""),
        (t("m_treated"), f"{number(sample['treated'], lang)} / {number(sample['control'], lang)}"),
        (t("m_design"), design_txt),
        (t("m_inference"), inference),
        (t("m_tests"), str(data.verdicts[0].get("test") or "") if data.verdicts else ""),
        (t("m_margin"), f"±{float(spec.get('equivalence_margin', 0.5)):.0%}; α = {spec.get('alpha', 0.05)}"),
        (t("m_price_year"), str(doc.get("price_year") or "")),
        (t("m_discount"), discounting_text(str(doc.get("discounting") or ""), lang)),
        (t("m_horizon"), t("m_horizon_v", first=min(years), last=max(years), n=len(years)) if years else ""),
        (t("m_not_tested"), ", ".join(not_tested) or t("m_not_tested_none")),
        (t("m_limits"), " ".join(limits)),
    ]


def _sig(x: Any, lang: str, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures in the language's number format (whole numbers from 1,000)."""
    if x is None or not isinstance(x, int | float) or x != x:
        return "" if x is None else str(x)
    if abs(x) >= 1000:
        return number(x, lang, 0)
    from math import floor, log10

    decimals = 0 if x == 0 else max(0, digits - 1 - floor(log10(abs(x))))
    return number(round(x, decimals), lang, decimals)


def _diff_value(value: Any, m: int, mark: str) -> Any:
    """A version-diff value for the page: the translated small-cell mark, JSON for a mapping or list."""
    if value == SUPPRESSED.format(n=m):
        return mark
    return jsonio.dumps(value, indent=None, fallback=str) if isinstance(value, dict | list) else value


def _kr(x: Any, lang: str) -> str:
    return number(x, lang, 0)


def _summary(data: ReportData, docs: dict[str, dict], verdict_rows: list[dict], payers: list[dict],
             udvalg: list[dict], diff: dict, t, lang: str) -> dict[str, Any]:
    """The one-page plain-language summary: assumed → shown → changed → who gains and who pays."""
    m = data.min_cell
    mark = t("suppressed", n=m)
    before = docs["before"]
    content = data.before.content
    participants = _assumed_participants(content)
    years = [c["year"] for c in before.get("cumulative", [])]
    assumed = t("assumed_text", version=data.before.version,
                participants=mark if is_small(participants, m) else number(participants, lang),
                cohorts=", ".join(str(c.get("year")) for c in content.get("cohorts", [])),
                s=number(before["success_rate"], lang, 2), cost=_kr(abs(before.get("pv_costs") or 0.0), lang),
                npv=_kr(before["npv"]["total"], lang), horizon=len(years), price_year=before.get("price_year") or "",
                discount=discounting_text(before.get("discounting") or "", lang))
    sample = _sample(data, m, mark)
    counts = {"consistent": 0, "refuted": 0, "inconclusive": 0}
    for v in verdict_rows:
        counts["refuted" if v["label"].startswith("refuted") else v["label"] if v["label"] in counts else "inconclusive"] += 1
    shown = t("shown_text", first=sample["first"] or "", last=sample["last"] or "",
              persons=number(sample["persons"], lang) if sample["persons"] is not None else "",
              vintage=data.run.data_vintage, **counts)
    items = [t("shown_item", name=v["assumption"], label=v["label_txt"], assumed=_sig(v["assumed"], lang),
               realised=v["realised_txt"] if v["realised_txt"] == mark or v["realised"] is None
               else _sig(v["realised"], lang)) for v in verdict_rows]
    if data.after is not None and "after" in docs:
        after = docs["after"]
        changed = t("changed_text", version=data.after.version, status=data.after.status, n=len(diff["changes"]),
                    k=len(diff["by_parameter"]), npv_before=_kr(before["npv"]["total"], lang),
                    npv_after=_kr(after["npv"]["total"], lang), s_before=number(before["success_rate"], lang, 3),
                    s_after=number(after["success_rate"], lang, 3))
        which = t("the_proposal", version=data.after.version)
    else:
        changed = t("changed_none", version=data.before.version)
        which = t("the_evaluated", version=data.before.version)
    who = []
    for r in payers:
        if r["payer"] == "total":
            continue
        pay = "" if r["role"] == "none" or not r["invested"] else (
            t("payback_in", year=r["payback"]) if r["payback"] else t("payback_never"))
        who.append(t("who_payer", payer=t("payer_" + r["payer"]), npv=_kr(r["npv"], lang),
                     role=t("role_" + r["role"]), payback=pay))
    named = [r for r in udvalg if r["udvalg"] != UNASSIGNED]
    if named:
        lo, hi = min(named, key=lambda r: r["npv"]), max(named, key=lambda r: r["npv"])
        who_udvalg = t("who_udvalg", payer_udvalg=lo["name"], npv=_kr(lo["npv"], lang), gain_udvalg=hi["name"],
                       gain=_kr(hi["npv"], lang))
        rest = sum(r["npv"] for r in udvalg if r["udvalg"] == UNASSIGNED)
        if any(r["udvalg"] == UNASSIGNED for r in udvalg):
            who_udvalg += " " + t("who_unassigned", npv=_kr(rest, lang))
    else:
        who_udvalg = t("who_udvalg_none")
    return {"assumed": assumed, "shown": shown, "shown_items": items, "changed": changed, "who": who,
            "who_udvalg": who_udvalg, "which": t("figures_from", which=which)}


def _udvalg_tables(docs: dict[str, dict], lang: str) -> dict[str, Any]:
    """The udvalg rows of the last version (display strings), the extra columns, the cross-subsidy by year and
    projected vs realised per udvalg — all from :mod:`pipeline.report.decision`."""
    last = list(docs.values())[-1]
    rows = decision.udvalg_rows(last)
    extra = decision.udvalg_extra_columns(rows)
    names, cross = decision.cross_subsidy(rows)
    compare = decision.udvalg_compare(docs) if len(docs) > 1 else []
    return {"rows": rows, "extra": extra, "cross_names": names, "cross": cross, "compare": compare}


def build_report(data: ReportData, *, workdir: Path | None = None, lang: str = DEFAULT_LANGUAGE) -> Report:
    """The report of ``data`` in ``lang`` (``da`` or ``en``): its HTML and its JSON document. With ``workdir`` the
    stored plan of the tested version (``som plan``) is shown against the realised precision."""
    from pipeline.alerts import run_alerts
    from pipeline.plan import load_plan
    from som_models.estimators import z_value

    lang = check_language(lang)
    t = translator(lang)
    m = data.min_cell
    mark = t("suppressed", n=m)
    z = z_value(float(data.spec.get("alpha", 0.05)))
    verdict_rows, charts = [], []
    for raw in data.verdicts:
        v = suppress_verdict(raw, m)
        evidence = v.get("evidence") or {}
        small = is_small(evidence.get("n_treated"), m)
        verdict_rows.append({**v, "assumed_txt": _fmt(v["assumed"]), "label_txt": t("label_" + v["label"]),
                             "realised_txt": mark if small else _fmt(v["realised"]),
                             "ci_txt": "" if small or v["ci_low"] is None
                             else t("range", lo=_fmt(v["ci_low"]), hi=_fmt(v["ci_high"]))})
        path_rows = [_with_interval(p, z) for p in evidence.get("path", []) if not p.get("suppressed")]
        path_rows = [p for p in path_rows if p is not None]
        hidden = len(evidence.get("path", [])) - len(path_rows)
        if path_rows and not small:
            outcome = v.get("outcome") or ""
            unit = outcome_unit(outcome, lang) or outcome
            if v["assumption"] == "success_rate":
                title, axis = t("chart_success"), t("share_participants")
            elif v["assumption"].startswith("course_path:"):
                title, axis = t("chart_course", outcome=outcome), t("per_participant_course", unit=unit)
            else:
                title, axis = t("chart_effect", outcome=outcome), t("per_person_year", unit=unit)
            charts.append({"title": title, "svg": Markup(effect_path_chart(title, axis, path_rows, t)),
                           "suppressed": hidden})
    held = []
    for assumption in dict.fromkeys(h["assumption"] for h in data.history):
        rows = [h for h in data.history if h["assumption"] == assumption]
        shown = [{**h, "label": t("label_" + h["label"]) if h.get("label") else ""} for h in rows
                 if h["realised"] is not None and h["ci_low"] is not None and not is_small(h["n_treated"], m)]
        outcome = assumption.split(":", 1)[1] if ":" in assumption else ""
        unit = (t("share_participants") if assumption == "success_rate" else
                t("per_person_year", unit=outcome_unit(outcome, lang) or outcome) if outcome else "")
        held.append({
            "assumption": assumption,
            "svg": Markup(history_chart(t("history_title", name=assumption), unit, shown, t)) if shown else None,
            "rows": [{"vintage": h["vintage"], "run": h["run_id"][:8], "label": h["label"],
                      "label_txt": t("label_" + h["label"]) if h.get("label") else "", "assumed": _fmt(h["assumed"]),
                      "realised": mark if is_small(h["n_treated"], m) else _fmt(h["realised"]),
                      "ci": "" if is_small(h["n_treated"],
                                           m) or h["ci_low"] is None else t("range", lo=_fmt(h["ci_low"]),
                                                                             hi=_fmt(h["ci_high"])),
                      "tested": f"v{h['tested_version']}" if h.get("tested_version") else "",
                      "look": "" if h.get("look") is None else f"{h['look']} (t = {h['information_fraction']:.2f})",
                      "flag": h.get("flag"), "replaces": h.get("replaces") or []}
                     for h in rows],
        })
    est = data.estimates.filter(pl.col("estimand") != "att_gt").select(
        "outcome", "estimand", "event_time", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control")
    est_table = suppress_small_cells(est, count_columns=["n_treated", "n_control"],
                                     value_columns=["estimate", "se", "ci_low", "ci_high"], min_cell=m)
    _, docs, sims = _projections(data)
    proj = _projection_rows(data, docs, sims, t)
    last_doc = list(docs.values())[-1]
    content = (data.after or data.before).content if (data.after or data.before) is not None else None
    alerts = [a.to_dict() for a in run_alerts(data.spec, data.verdicts, content, data.history, data.run.id)]
    plan = load_plan(workdir, data.intervention, getattr(data.before, "version", None))
    plan_rows, plan_year = _plan_rows(data, plan, verdict_rows)
    payers = decision.payer_rows(docs)
    udvalg = _udvalg_tables(docs, lang)
    diff = decision.version_diff(data.before.content, data.after.content if data.after is not None else None, m)
    summary = _summary(data, docs, verdict_rows, payers, udvalg["rows"], diff, t, lang)
    failed = [c for c in data.checks if not c["passed"]]
    warnings = [(t("projection_warning", which=t("v_" + k)), w) for k, d in docs.items() for w in d.get("warnings", [])]
    html = _ENV.get_template("audit.html.j2").render(
        t=t, lang=lang, kr=lambda x: _kr(x, lang), num=lambda x, d=0: number(x, lang, d),
        alerts=alerts, plan=plan, plan_rows=plan_rows, plan_year=plan_year, plan_overview=_plan_overview(plan, plan_year),
        plan_history=_plan_history(data, workdir), plan_source=(plan or {}).get("variance_source", ""),
        title=data.title, data=data, run=data.run, generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        verdicts=verdict_rows, charts=charts, held=held, **_volume_rows(tuple(verdict_rows), m, mark),
        estimates=[{k: mark if v == SUPPRESSED.format(n=m) else v for k, v in r.items()} for r in est_table.to_dicts()],
        estimate_columns=[c for c in est_table.columns if c != "suppressed"],
        **proj, profiles=_profile_rows(data, t), summary=summary, payers=payers, udvalg=udvalg,
        diff={**diff, "changes": [{**c, **{k: _diff_value(c[k], m, mark) for k in ("from", "to")}} for c in diff["changes"]]},
        version_names={k: t("v_" + k) for k in docs}, method=_method(data, last_doc, t, lang),
        glossary=glossary(lang), failed_checks=failed, passed_checks=[c for c in data.checks if c["passed"]],
        projection_warnings=warnings, checks=list(data.checks), checks_failed=len(failed), min_cell=m, mark=mark,
        spec_text=jsonio.dumps(data.spec, fallback=str),
        alpha=data.spec.get("alpha", 0.05), margin=data.spec.get("equivalence_margin", 0.5),
    )
    document = {
        "lang": lang, "intervention": data.intervention, "evaluation": data.evaluation, "run_id": data.run.id,
        "data_vintage": data.run.data_vintage, "min_cell": m,
        "versions": {k: (data.before if k == "before" else data.after).version for k in docs},
        "cohorts": {k: [[c["year"], None if is_small(c["participants"], m) else c["participants"]]
                        for c in (data.before if k == "before" else data.after).content.get("cohorts", [])]
                    for k in docs},
        "projections": docs,
        "payers": payers,
        "udvalg": [{k: v for k, v in r.items() if k != "by_year"} for r in udvalg["rows"]],
        "udvalg_by_year": udvalg["cross"],
        "udvalg_compare": udvalg["compare"],
        "version_diff": diff["changes"],
    }
    return Report(html=html, document=document)


def render_report(data: ReportData, path: Path, *, workdir: Path | None = None, lang: str = DEFAULT_LANGUAGE) -> Path:
    """Build the report of ``data`` (:func:`build_report`) and write its HTML atomically; returns the path."""
    return write_text_atomic(path, build_report(data, workdir=workdir, lang=lang).html)

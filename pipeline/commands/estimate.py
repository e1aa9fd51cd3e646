"""`som estimate PANEL` — realised effects from a person-period panel (Parquet or CSV), printed and as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from pipeline.cli import console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.disclosure import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell, suppress_frame, suppress_records

COUNT_COLUMNS = ("n_treated", "n_control")
VALUE_COLUMNS = ("estimate", "se", "ci_low", "ci_high")


def register(app: typer.Typer) -> None:
    app.command()(json_command(estimate))


def _read(path: Path):
    import polars as pl

    if not path.exists():
        fail(f"panel file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".txt"):
            with path.open("rb") as fh:
                head = fh.readline().decode("utf-8", errors="replace")
            if head.count(";") > head.count(","):
                return pl.read_csv(path, separator=";", decimal_comma=True, infer_schema_length=10_000,
                                   encoding="utf8-lossy")
            return pl.read_csv(path, infer_schema_length=10_000)
    except Exception as exc:  # polars raises several error types for unreadable files
        fail(f"could not read {path}: {str(exc).splitlines()[0]}")
    fail(f"unsupported panel format {suffix!r}; use .parquet or .csv")


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}"
    return str(v)


def estimate(
    panel: Path = typer.Argument(..., help="Person-period panel, Parquet or CSV (';' with decimal comma is detected)."),
    id_col: str = typer.Option(..., "--id", help="Unit (person) id column."),
    time_col: str = typer.Option(..., "--time", help="Period column (e.g. year)."),
    outcome: List[str] = typer.Option(..., "--outcome", help="Outcome column (repeat for several)."),
    group: Optional[str] = typer.Option(None, "--group", help="First treated period per unit (0/missing = never)."),
    treatment: Optional[str] = typer.Option(None, "--treatment", help="0/1 treatment indicator per unit-period "
                                            "(alternative to --group; must not switch off)."),
    design: str = typer.Option("staggered", "--design", help="staggered | rct | matched."),
    arm: Optional[str] = typer.Option(None, "--arm", help="rct: 0/1 arm column."),
    start: Optional[str] = typer.Option(None, "--start", help="rct: randomisation period (a number) or a column."),
    control: str = typer.Option("never", "--control", help="never | notyet (comparison group)."),
    base_period: str = typer.Option("varying", "--base-period", help="varying | universal."),
    covariates: Optional[str] = typer.Option(None, "--covariates", help="Comma-separated covariate columns."),
    method: Optional[str] = typer.Option(None, "--method", help="staggered/matched: reg | ipw | dr | dr-imp "
                                         "(default dr with covariates); rct: dim | ancova (default dim)."),
    alpha: float = typer.Option(0.05, "--alpha", help="1 − confidence level."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Multiplier-bootstrap draws (0 = analytic SEs, pointwise CIs)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap / matching seed."),
    bootstrap_weights: str = typer.Option("mammen", "--bootstrap-weights", help="mammen | rademacher."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Time-invariant unit weight column."),
    match_on: Optional[str] = typer.Option(None, "--match-on", help="matched: comma-separated covariates for the "
                                           "propensity score (pre-period values)."),
    exact: Optional[str] = typer.Option(None, "--exact", help="matched: comma-separated columns to match exactly."),
    pre_periods: int = typer.Option(1, "--pre-periods", help="matched: pre-period outcomes used for matching."),
    caliper: float = typer.Option(0.2, "--caliper", help="matched: caliper in SDs of the logit score."),
    ratio: int = typer.Option(1, "--ratio", help="matched: neighbours per treated unit."),
    replace: bool = typer.Option(True, "--replace/--no-replace", help="matched: match with replacement."),
    treatments: Optional[Path] = typer.Option(None, "--treatments", help="Treatments file (e.g. from som ingest): its "
                                              "start_year per id becomes the --group column (absent = never treated)."),
    min_cell: int = typer.Option(DEFAULT_MIN_CELL, "--min-cell", help="Smallest number of persons a published "
                                 "figure may describe; rows resting on fewer are suppressed (Statistics Denmark's rule)."),
    json_out: Optional[Path] = JsonOpt,
) -> None:
    """Estimate realised effects. Example: som estimate mpdta.csv --id countyreal --time year --outcome lemp --group first.treat

    A panel from `som ingest` takes its treatment timing from the treatments file:
    som estimate panel.parquet --treatments treatments.parquet --id person_id --time year --outcome shelter_nights --group start_year
    """
    if design not in ("staggered", "rct", "matched"):
        fail(f"--design must be staggered, rct or matched (got {design!r})")
    if control not in ("never", "notyet"):
        fail(f"--control must be never or notyet (got {control!r})")
    if base_period not in ("varying", "universal"):
        fail(f"--base-period must be varying or universal (got {base_period!r})")
    if not 0 < alpha < 1:
        fail(f"--alpha must be between 0 and 1 (got {alpha})")
    if bootstrap < 0 or bootstrap == 1:
        fail(f"--bootstrap must be 0 (off) or at least 2 draws (got {bootstrap})")
    try:
        check_min_cell(min_cell)
    except ValueError as exc:
        fail(f"--min-cell: {exc}")
    if bootstrap_weights not in ("mammen", "rademacher"):
        fail(f"--bootstrap-weights must be mammen or rademacher (got {bootstrap_weights!r})")
    covs = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else []
    rct_methods, did_methods = ("dim", "ancova"), ("reg", "ipw", "dr", "dr-imp")
    if design == "rct":
        if method is not None and method not in rct_methods:
            fail(f"--method for --design rct must be dim or ancova (got {method!r})")
        if arm is None or start is None:
            fail("--design rct needs --arm (0/1 column) and --start (randomisation period or column)")
    else:
        if method is not None and method not in did_methods:
            fail(f"--method must be reg, ipw, dr or dr-imp for --design {design} (got {method!r})")
        if (group is None) == (treatment is None):
            fail(f"--design {design} needs exactly one of --group (first treated period) or --treatment (0/1 indicator)")
        if method is not None and not covs:
            fail(f"--method {method} needs --covariates (without covariates the estimator is the unconditional DiD)")

    data = _read(panel)
    from pipeline.hashing import file_sha256

    digest = file_sha256(panel)
    if treatments is not None:
        import polars as pl

        treat = _read(treatments)
        if id_col not in treat.columns or "start_year" not in treat.columns:
            fail(f"{treatments}: needs columns {id_col!r} and 'start_year' (has {', '.join(treat.columns)})")
        if group is None:
            fail("--treatments needs --group naming the column to create (e.g. --group start_year)")
        starts = treat.group_by(id_col).agg(pl.col("start_year").cast(pl.Int64).min().alias(group))
        data = data.drop(group, strict=False).join(starts, on=id_col, how="left").with_columns(pl.col(group).fill_null(0))
    from pipeline.version import code_version

    try:
        if design == "rct":
            result_tables, meta_design = _run_rct(data, outcome, id_col, time_col, arm, start, method or "dim", covs, alpha)
        else:
            if treatment is not None:
                from som_models.estimators.panel import first_treatment_period

                data = first_treatment_period(data, id_col=id_col, time_col=time_col, treat_col=treatment,
                                              name="_first_treat")
                group = "_first_treat"
            result_tables, meta_design = _run_did(
                data, outcome, id_col, time_col, group, design, control, base_period, covs, method, alpha, bootstrap,
                seed, bootstrap_weights, weights,
                dict(match_on=[c.strip() for c in match_on.split(",") if c.strip()] if match_on else [],
                     exact=[c.strip() for c in exact.split(",") if c.strip()] if exact else [],
                     pre_periods=pre_periods, caliper=caliper, ratio=ratio, replace=replace))
    except ValueError as exc:
        fail(str(exc).splitlines()[0])
    import polars as pl

    table = suppress_frame(pl.concat(result_tables), count_columns=COUNT_COLUMNS, value_columns=VALUE_COLUMNS,
                           min_cell=min_cell)
    meta = _disclosed_meta({
        **meta_design,
        "alpha": alpha,
        "min_cell": min_cell,
        "data": {"path": str(panel), "sha256": digest, "rows": data.height},
        "code_version": code_version(),
    }, table, min_cell)
    _print(table, meta)
    emit_json(json_out, {"metadata": meta, "estimates": table})


def _disclosed_meta(meta: dict, table, min_cell: int) -> dict:
    """Run metadata with the small-cell rule applied to its per-cohort and per-period details.

    RCT details carry their own counts; matching balance rows belong to a cohort and are withheld when that
    cohort's group estimate rests on fewer than ``min_cell`` treated persons.
    """
    meta = dict(meta)
    if meta.get("details"):
        meta["details"] = {y: suppress_records(rows, count_keys=COUNT_COLUMNS, min_cell=min_cell,
                                               value_keys=("estimate", "se_classical", "se_robust", "p_robust",
                                                           "mean_treated", "mean_control"))
                           for y, rows in meta["details"].items()}
    if meta.get("balance"):
        cohorts = {(r["outcome"], r["group"]): r["n_treated"] for r in table.iter_rows(named=True)
                   if r["estimand"] == "group"}
        balance = {}
        for y, rows in meta["balance"].items():
            balance[y] = []
            for b in rows:
                small = cohorts.get((y, b.get("group"))) is None  # suppressed or no cohort estimate
                withheld = {k: None for k in b if k not in ("group", "feature")} if small else {}
                balance[y].append({**b, **withheld, "suppressed": small})
        meta["balance"] = balance
    overall_hidden = {r["outcome"] for r in table.iter_rows(named=True) if r["estimand"] == "overall" and r["suppressed"]}
    if overall_hidden and meta.get("notes"):
        meta["notes"] = {y: ({**n, "simple_att": None} if y in overall_hidden and "simple_att" in n else n)
                         for y, n in meta["notes"].items()}
    return meta


def _run_did(data, outcomes, id_col, time_col, group, design, control, base_period, covs, method, alpha, draws, seed,
             boot_weights, weight_col, match):
    from som_models.estimators import aggregate, att_gt, effects_table, pretrend_test
    from som_models.estimators.bootstrap import bootstrap_aggregate, bootstrap_cells

    from pipeline.progress import track

    tables, pretrends, notes, boot_meta, balance = [], {}, {}, {}, {}
    what = f"Estimating ({draws} bootstrap draws)" if draws else "Estimating"
    for y in track(outcomes, what):
        if design == "matched":
            from som_models.estimators.matching import match_comparison, matched_att_gt

            m = match_comparison(data, outcome=y, id_col=id_col, time_col=time_col, group_col=group,
                                 covariates=match["match_on"], exact=match["exact"], pre_periods=match["pre_periods"],
                                 method="nearest" if (match["match_on"] or match["pre_periods"]) else "exact",
                                 ratio=match["ratio"], caliper=match["caliper"], replace=match["replace"], seed=seed)
            res = matched_att_gt(data, m, outcome=y, id_col=id_col, time_col=time_col, group_col=group,
                                 base_period=base_period, covariates=covs, method=method)
            balance[y] = m.balance.to_dicts()
        else:
            res = att_gt(data, outcome=y, id_col=id_col, time_col=time_col, group_col=group, control=control,
                         base_period=base_period, covariates=covs, method=method, weight_col=weight_col)
        aggs = {k: aggregate(res, k) for k in ("dynamic", "group", "calendar")}
        boot = None
        if draws:
            kw = dict(draws=draws, seed=seed, weights=boot_weights, alpha=alpha)
            boot = {"cells": bootstrap_cells(res, **kw)}
            for k, agg in aggs.items():
                by_level, overall = bootstrap_aggregate(agg, res.n_units, **kw)
                boot[k] = by_level
                if k == "dynamic":
                    boot["overall"] = overall
            boot_meta[y] = {k: {"critical_value": b.crit, "draws": b.draws} for k, b in boot.items() if b is not None}
        tables.append(effects_table(res, aggs, alpha=alpha, bootstrap=boot))
        pt = pretrend_test(res)
        pretrends[y] = {"statistic": pt.statistic, "df": pt.df, "p_value": pt.p_value}
        notes[y] = dict(res.notes)
        notes[y]["simple_att"] = {"estimate": aggregate(res, "simple").overall, "se": aggregate(res, "simple").overall_se}
        flagged = [f"({c.group},{c.time}): {', '.join(c.flags)}" for c in res.cells if c.flags]
        if flagged:
            notes[y]["flagged_cells"] = flagged
    meth = tables and res.method
    meta = {
        "design": {"staggered": "staggered adoption, Callaway & Sant'Anna (2021) ATT(g,t)",
                   "matched": "matched comparison group from the never-treated population, then ATT(g,t) per cohort"}[design],
        "comparison_group": {"never": "never treated", "notyet": "not yet treated"}[control] if design == "staggered"
        else "matched never-treated units",
        "base_period": base_period,
        "covariates": covs,
        "covariates_period": "base period of each ATT(g,t)" if covs else None,
        "method": meth,
        "overall": "mean of the post-treatment event-time effects (dynamic aggregation)",
        "standard_errors": ("multiplier bootstrap (" + boot_weights + "), clustered by unit" if draws
                            else "analytic influence function, clustered by unit"),
        "intervals": "simultaneous (uniform) bands per estimand family" if draws else "pointwise",
        "unbalanced_panels": "kept; each ATT(g,t) uses the units observed in both of its periods",
        "pretrend_test": pretrends,
        "notes": notes,
    }
    if draws:
        meta["bootstrap"] = {"draws": draws, "seed": seed, "weights": boot_weights, "critical_values": boot_meta}
    if balance:
        meta["balance"] = balance
    return tables, meta


def _run_rct(data, outcomes, id_col, time_col, arm, start, method, covs, alpha):
    from som_models.estimators.rct import rct_effects

    try:
        start_val: int | str = int(start)
    except ValueError:
        start_val = start
    tables, details, notes = [], {}, {}
    for y in outcomes:
        r = rct_effects(data, outcome=y, id_col=id_col, time_col=time_col, arm_col=arm, start=start_val, method=method,
                        covariates=covs, alpha=alpha)
        tables.append(r.table)
        details[y] = r.details.to_dicts()
        notes[y] = dict(r.notes)
    meta = {
        "design": "randomised: " + ("difference in means" if method == "dim" else "ANCOVA (baseline outcome at e = -1"
                                    + (", covariates" if covs else "") + ")") + " by period since randomisation",
        "comparison_group": "control arm",
        "covariates": covs,
        "method": method,
        "standard_errors": "HC2 robust (classical SEs in details)",
        "intervals": "pointwise",
        "overall": "mean of the effects at e >= 0; SE from per-person influence functions",
        "pretrend_test": None,
        "details": details,
        "notes": notes,
    }
    return tables, meta


def _print(table, meta) -> None:
    mark = "(s)"
    t = Table(title=f"Realised effects — {meta['design']}")
    for col in ("outcome", "estimand", "group", "time", "e", "estimate", "se", "ci_low", "ci_high", "n_treated", "n_control"):
        t.add_column(col, justify="left" if col in ("outcome", "estimand") else "right")
    for r in table.iter_rows(named=True):
        shown = [mark] * 6 if r["suppressed"] else [_fmt(r[k]) for k in (*VALUE_COLUMNS, *COUNT_COLUMNS)]
        t.add_row(r["outcome"], r["estimand"], _fmt(r["group"]), _fmt(r["time"]), _fmt(r["event_time"]), *shown)
    console.print(t)
    if table["suppressed"].any():
        console.print(f"(s) = {SUPPRESSED.format(n=meta['min_cell'])}: {int(table['suppressed'].sum())} rows rest on "
                      f"fewer than {meta['min_cell']} persons.", soft_wrap=True)
    pre = meta.get("pretrend_test") or {}
    for y, p in pre.items():
        if p["df"]:
            console.print(f"Pre-trend test ({y}): χ²({p['df']}) = {p['statistic']:.3f}, p = {p['p_value']:.4f}")
    console.print(f"SEs: {meta['standard_errors']}; intervals: {meta['intervals']}.", soft_wrap=True)

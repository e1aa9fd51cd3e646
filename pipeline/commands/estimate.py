"""`som estimate PANEL` — realised effects from a person-period panel (Parquet or CSV), printed and as JSON."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pipeline.cli import console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.disclosure import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell_floor, suppress_frame, suppress_records

COUNT_COLUMNS = ("n_treated", "n_control")
VALUE_COLUMNS = ("estimate", "se", "ci_low", "ci_high")


def register(app: typer.Typer) -> None:
    app.command()(json_command(estimate))


def _scan(path: Path):
    """A lazy scan of a panel or treatments file (Parquet, or CSV with ';' and decimal comma detected)."""
    import polars as pl

    if not path.exists():
        fail(f"panel file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.scan_parquet(path)
        if suffix in (".csv", ".txt"):
            with path.open("rb") as fh:
                head = fh.readline().decode("utf-8", errors="replace")
            if head.count(";") > head.count(","):
                return pl.scan_csv(path, separator=";", decimal_comma=True, infer_schema_length=10_000,
                                   encoding="utf8-lossy")
            return pl.scan_csv(path, infer_schema_length=10_000)
    except Exception as exc:  # polars raises several error types for unreadable files
        fail(f"could not read {path}: {str(exc).splitlines()[0]}")
    fail(f"unsupported panel format {suffix!r}; use .parquet or .csv")


def read_columns(path: Path, columns: list[str], *, narrow_floats: bool = False):
    """Only ``columns`` of the file (an error naming the first missing one), in compact types that hold every value
    exactly (:func:`compact`).

    Reading the whole panel costs memory in proportion to every register column of the delivery; the estimate
    needs a handful (at 300 k persons 2.3 GiB reading everything, measured in issue 16).
    """
    import polars as pl

    from som_models.estimators.panel import check_columns

    lf = _scan(path)
    try:
        schema = lf.collect_schema()
    except Exception as exc:
        fail(f"could not read {path}: {str(exc).splitlines()[0]}")
    wanted = list(dict.fromkeys(columns))
    try:
        check_columns(pl.DataFrame(schema=schema), wanted)
    except ValueError as exc:
        fail(str(exc).splitlines()[0])
    try:
        lf = lf.select(wanted)
        return lf.with_columns(compact_casts(lf, floats=narrow_floats)).collect(engine="streaming")
    except Exception as exc:
        fail(f"could not read {path}: {str(exc).splitlines()[0]}")


def compact_casts(lf, *, floats: bool = False) -> list:
    """Casts to compact types that hold every value exactly, found in one streaming pass over ``lf``: Int64 (and
    wider unsigned) columns to Int32 when every value fits; with ``floats``, Float64 columns to Float32 when every
    value converts exactly (counts, ages, birth years, 0/1 indicators; not with NaN). The values are unchanged, so
    are the estimates of an estimator that computes in float64 (the staggered design's panel builder casts every
    column to float64; the other designs compute on the frame, so the command narrows floats for the staggered
    design only). Casting inside the query keeps the wide columns from ever being held."""
    import polars as pl

    schema = lf.collect_schema()
    ints = [c for c, t in schema.items() if t in (pl.Int64, pl.UInt64, pl.UInt32)]
    flts = [c for c, t in schema.items() if floats and t == pl.Float64]
    if not ints and not flts:
        return []
    stats = lf.select(
        *(pl.col(c).min().cast(pl.Float64).alias(f"lo{k}") for k, c in enumerate(ints)),
        *(pl.col(c).max().cast(pl.Float64).alias(f"hi{k}") for k, c in enumerate(ints)),
        *(((pl.col(c).cast(pl.Float32).cast(pl.Float64) == pl.col(c)).all() & ~pl.col(c).is_nan().any())
          .alias(f"ex{k}") for k, c in enumerate(flts)),
    ).collect(engine="streaming").row(0, named=True)
    casts = []
    for k, c in enumerate(ints):
        lo, hi = stats[f"lo{k}"], stats[f"hi{k}"]
        if lo is not None and hi is not None and -(2**31) <= lo and hi <= 2**31 - 1:
            casts.append(pl.col(c).cast(pl.Int32))
    casts += [pl.col(c).cast(pl.Float32) for k, c in enumerate(flts) if stats[f"ex{k}"]]
    return casts


def compact(data, *, floats: bool = False):
    """A frame in the compact types of :func:`compact_casts`."""
    casts = compact_casts(data.lazy(), floats=floats)
    return data.with_columns(casts) if casts else data


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
    outcome: list[str] = typer.Option(..., "--outcome", help="Outcome column (repeat for several)."),
    group: str | None = typer.Option(None, "--group", help="First treated period per unit (0/missing = never)."),
    treatment: str | None = typer.Option(None, "--treatment", help="0/1 treatment indicator per unit-period "
                                            "(alternative to --group; must not switch off)."),
    design: str = typer.Option("staggered", "--design", help="staggered | rct | matched."),
    arm: str | None = typer.Option(None, "--arm", help="rct: 0/1 arm column."),
    start: str | None = typer.Option(None, "--start", help="rct: randomisation period (a number) or a column."),
    control: str = typer.Option("never", "--control", help="never | notyet (comparison group)."),
    base_period: str = typer.Option("varying", "--base-period", help="varying | universal."),
    covariates: str | None = typer.Option(None, "--covariates", help="Comma-separated covariate columns."),
    method: str | None = typer.Option(None, "--method", help="staggered/matched: reg | ipw | dr | dr-imp "
                                         "(default dr with covariates); rct: dim | ancova (default dim)."),
    alpha: float = typer.Option(0.05, "--alpha", help="1 − confidence level."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Multiplier-bootstrap draws (0 = analytic SEs, pointwise CIs)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap / matching seed."),
    bootstrap_weights: str = typer.Option("mammen", "--bootstrap-weights", help="mammen | rademacher."),
    weights: str | None = typer.Option(None, "--weights", help="Time-invariant unit weight column."),
    cluster: str | None = typer.Option(None, "--cluster", help="staggered: cluster the SEs (and the bootstrap) by this "
                                       "column, constant within unit — the level at which treatment was assigned."),
    match_on: str | None = typer.Option(None, "--match-on", help="matched: comma-separated covariates for the "
                                           "propensity score (pre-period values)."),
    exact: str | None = typer.Option(None, "--exact", help="matched: comma-separated columns to match exactly."),
    pre_periods: int = typer.Option(1, "--pre-periods", help="matched: pre-period outcomes used for matching."),
    caliper: float = typer.Option(0.2, "--caliper", help="matched: caliper in SDs of the logit score."),
    ratio: int = typer.Option(1, "--ratio", help="matched: neighbours per treated unit."),
    replace: bool = typer.Option(True, "--replace/--no-replace", help="matched: match with replacement."),
    treatments: Path | None = typer.Option(None, "--treatments", help="Treatments file (e.g. from som ingest): its "
                                              "start_year per id becomes the --group column (absent = never treated)."),
    min_cell: int = typer.Option(DEFAULT_MIN_CELL, "--min-cell", help="Smallest number of persons a published "
                                 "figure may describe; rows resting on fewer are suppressed (Statistics Denmark's rule)."),
    min_cell_reason: str | None = typer.Option(None, "--min-cell-reason", help="Why --min-cell is below the agency's "
                                               "floor of 5 (required then; recorded in the --json metadata)."),
    json_out: Path | None = JsonOpt,
) -> None:
    """Estimate realised effects. Example: som estimate mpdta.csv --id countyreal --time year --outcome lemp --group first.treat

    A panel from `som ingest` takes its treatment timing from the treatments file:
    som estimate panel.parquet --treatments treatments.parquet --id person_id --time year \\
        --outcome shelter_nights --group start_year
    """
    from types import SimpleNamespace

    from som_models.estimators.dispatch import EstimationSettings, settings_problems

    covs = tuple(c.strip() for c in covariates.split(",") if c.strip()) if covariates else ()
    start_val: int | str | None = start
    if start is not None:
        try:
            start_val = int(start)
        except ValueError:
            start_val = start
    options = dict(
        design=design, control=control, base_period=base_period, covariates=covs, method=method, alpha=alpha,
        bootstrap=bootstrap, bootstrap_weights=bootstrap_weights, seed=seed, weight_col=weights, cluster=cluster,
        match_on=tuple(c.strip() for c in match_on.split(",") if c.strip()) if match_on else (),
        exact=tuple(c.strip() for c in exact.split(",") if c.strip()) if exact else (),
        pre_periods=pre_periods, caliper=caliper, ratio=ratio, replace=replace, arm_col=arm, start=start_val)
    flags = {f: "--" + f.replace("_", "-") for f in EstimationSettings.__dataclass_fields__}
    flags.update(arm_col="--arm", weight_col="--weights")
    problems = settings_problems(SimpleNamespace(**{**EstimationSettings().__dict__, **options}), flags)
    if problems:
        fail(problems[0])
    try:
        override = check_min_cell_floor(min_cell, min_cell_reason)
    except ValueError as exc:
        fail(f"--min-cell: {exc}")
    settings = EstimationSettings(**options)
    if design != "rct" and (group is None) == (treatment is None):
        fail(f"--design {design} needs exactly one of --group (first treated period) or --treatment (0/1 indicator)")

    if treatments is not None and group is None:
        fail("--treatments needs --group naming the column to create (e.g. --group start_year)")
    data = read_columns(panel, needed_columns(
        id_col=id_col, time_col=time_col, outcomes=outcome, group=None if treatments is not None else group,
        treatment=treatment, settings=settings), narrow_floats=design == "staggered")
    from pipeline.hashing import file_sha256

    digest = file_sha256(panel)
    if treatments is not None and group is not None:
        data = with_treatment_start(data, treatments, id_col=id_col, group=group)
    from pipeline.progress import track
    from pipeline.version import code_version
    from som_models.estimators.dispatch import estimate as run_estimator

    if treatment is not None and design != "rct":
        from som_models.estimators.panel import first_treatment_period

        data = first_treatment_period(data, id_col=id_col, time_col=time_col, treat_col=treatment, name="_first_treat")
        group = "_first_treat"
    try:
        effects = run_estimator(data, outcomes=outcome, id_col=id_col, time_col=time_col, group_col=group,
                                settings=settings, progress=track)
    except ValueError as exc:
        fail(str(exc).splitlines()[0])
    table = suppress_frame(effects.table, count_columns=COUNT_COLUMNS, value_columns=VALUE_COLUMNS, min_cell=min_cell)
    meta = _disclosed_meta({
        **effects.metadata,
        "min_cell": min_cell,
        **({"min_cell_override": override} if override is not None else {}),
        "data": {"path": str(panel), "sha256": digest, "rows": data.height},
        "code_version": code_version(),
    }, table, min_cell)
    _print(table, meta)
    emit_json(json_out, {"metadata": meta, "estimates": table})


def needed_columns(*, id_col: str, time_col: str, outcomes: list[str], group: str | None, treatment: str | None,
                   settings) -> list[str]:
    """The panel columns an estimation with ``settings`` reads (in order, each once)."""
    s = settings
    cols = [id_col, time_col, *outcomes, group, treatment, *s.covariates, s.weight_col, s.cluster, *s.match_on,
            *s.exact, s.arm_col, s.start if isinstance(s.start, str) else None]
    return [c for c in dict.fromkeys(cols) if c is not None]


def with_treatment_start(data, treatments: Path, *, id_col: str, group: str):
    """The panel with ``group`` = each unit's first ``start_year`` in the treatments file (0 = never treated),
    looked up per row (one new column; the panel's columns are not copied as a join would)."""
    import polars as pl

    schema = _scan(treatments).collect_schema()
    if id_col not in schema or "start_year" not in schema:
        fail(f"{treatments}: needs columns {id_col!r} and 'start_year' (has {', '.join(schema)})")
    treat = read_columns(treatments, [id_col, "start_year"])
    id_dtype = data.schema[id_col]
    starts = (treat.with_columns(pl.col(id_col).cast(id_dtype, strict=False))
              .filter(pl.col(id_col).is_not_null())
              .group_by(id_col).agg(pl.col("start_year").cast(pl.Int64).min()))
    start = (pl.col(id_col).replace_strict(starts.get_column(id_col), starts.get_column("start_year"), default=None,
                                           return_dtype=pl.Int64).fill_null(0))
    return data.with_columns(compact(data.select(start.alias(group))).get_column(group))


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

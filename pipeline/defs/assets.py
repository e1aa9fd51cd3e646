"""The evaluation loop as Dagster assets (thin wrappers over ``pipeline.evaluation`` and ``som_models``).

delivery → panel, treatments → realised_effects, pretrend_tests → verdicts → parameter_candidate →
parameter_proposal → projections → audit_report; ``assumptions`` is the approved parameter version under
evaluation. ``parameter_candidate`` is the proposal as a value; its blocking check ``proposal_plausible``
(:mod:`pipeline.defs.checks`) must pass before ``parameter_proposal`` writes anything to the store. No
materialisation records person-level data: metadata holds counts, hashes and summary tables only, and every
count or estimate shown rests on at least ``min_cell`` persons (the spec's ``min_cell``, default 5; smaller
cells read "suppressed", :func:`pipeline.disclosure.suppress_small_cells`). Frames carry Dagster's
standard ``dagster/row_count`` and ``dagster/column_schema``; summary tables are ``MetadataValue.table``.
The ``registers`` multi-asset is ingestion (:func:`pipeline.registers.ingest.build_checked`, the same path as
``som ingest``); every expectation it evaluates is one of its asset checks.
"""


import dagster as dg
import polars as pl

from pipeline import evaluation as ev
from pipeline.defs.delivery_config import DeliveryChanged, DeliveryConfig, choose_delivery
from pipeline.defs.partitions import evaluation_partitions, partition_parts
from pipeline.defs.resources import SomSettings
from pipeline.disclosure import suppress_small_cells
from pipeline.quality.checks import ingest_check_results, ingest_check_specs
from pipeline.registers import delivery_hash, load_key, read_manifest
from pipeline.registers.ingest import RefusedDelivery, build_checked
from pipeline.version import code_version
from som_models.parameters import parse_parameter_set

DEFAULT_MIN_CELL = 5

#: Revision of each asset's computation; bump one when its code changes what it produces. The code version
#: Dagster records is ``{package version}.r{revision}`` (a changed version marks downstream assets stale).
REVISIONS = {
    "delivery": 1, "registers": 2, "assumptions": 1, "effects": 3, "verdicts": 5, "parameter_candidate": 3,
    "parameter_proposal": 3, "projections": 2, "audit_report": 2, "consequence_profiles": 1,
}


def _package_version() -> str:
    return code_version().split("+", 1)[0]


def asset_code_version(name: str) -> str:
    """The code version of asset (or multi-asset) ``name``."""
    return f"{_package_version()}.r{REVISIONS[name]}"


def _table_type(dtype: pl.DataType) -> str:
    return "float" if dtype.is_float() else "int" if dtype.is_integer() else "bool" if dtype == pl.Boolean else \
        "date" if dtype == pl.Date else "datetime" if isinstance(dtype, pl.Datetime) else "string"


def column_schema(df: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=c, type=_table_type(t)) for c, t in df.schema.items()])


def frame_metadata(df: pl.DataFrame) -> dict:
    """Dagster's standard metadata of a stored frame: row count and column schema."""
    return {"dagster/row_count": df.height, "dagster/column_schema": column_schema(df)}


def table_metadata(df: pl.DataFrame, digits: int = 4) -> dg.MetadataValue:
    """A small summary table (floats rounded to ``digits`` significant digits)."""
    def cell(v):
        if isinstance(v, float):
            return float(f"{v:.{digits}g}") if v == v else None
        return v

    records = [dg.TableRecord({k: cell(v) for k, v in row.items()}) for row in df.iter_rows(named=True)]
    schema = dg.TableSchema(columns=[dg.TableColumn(name=c, type=_table_type(t)) for c, t in df.schema.items()])
    return dg.MetadataValue.table(records, schema=schema)


def suppressed_table(df: pl.DataFrame, *, counts: list[str], values: list[str] = (), min_cell: int) -> dg.MetadataValue:
    """``df`` as a table with every row resting on fewer than ``min_cell`` persons suppressed (all text)."""
    out = suppress_small_cells(df, count_columns=list(counts), value_columns=list(values), min_cell=min_cell)
    return table_metadata(out)


def suppressed_count(n: int, min_cell: int) -> int | str:
    """``n`` if at least ``min_cell``, else the suppression mark."""
    return n if n >= min_cell else f"suppressed (<{min_cell})"


PARTITIONS = evaluation_partitions()


def _spec(context: dg.AssetExecutionContext, som: SomSettings):
    evaluation, _ = partition_parts(context)
    return ev.load_spec(som.spec_path(evaluation))


@dg.asset(group_name="ingest", partitions_def=PARTITIONS,
          description="A register delivery: the folder the run evaluates, its manifest, period, vintage and content hash.")
def delivery(context: dg.AssetExecutionContext, som: SomSettings, config: DeliveryConfig) -> dict:
    """The delivery that triggered the run (run config), else the explicit folder, else the vintage's newest one.

    Refuses a folder whose content no longer matches the fingerprint/data hash it was requested with.
    """
    import os

    from pipeline.report.i18n import check_language

    # the audit report's language (SOM_REPORT_LANGUAGE): checked first, not after the proposal is stored
    check_language(som.report_language or "da")
    _, vintage = partition_parts(context)
    chosen = choose_delivery(config, vintage, landing=som.landing_path(),
                             explicit=som.delivery or os.environ.get("SOM_DELIVERY", ""))
    manifest = read_manifest(chosen.folder)
    if manifest.vintage != vintage:
        raise ValueError(f"delivery {manifest.folder} has vintage {manifest.vintage!r}, not the partition's {vintage!r}")
    data_hash = delivery_hash(manifest)
    if config.data_hash and data_hash != config.data_hash:
        raise DeliveryChanged(f"delivery {manifest.folder.name} has other content than requested (data sha256 "
                              f"{data_hash[:12]}, requested {config.data_hash[:12]}); the sensor requests a new run")
    # a register the spec needs but the delivery neither delivers nor lists: refused here, before ingestion, for
    # runs the sensor, the schedule or a backfill start as for `som evaluate` (which checks it before the run)
    # — against the parameter set under test (the spec's parameter_version or the latest approved version)
    loaded = _spec(context, som)
    with som.store() as store:
        ev.check_delivery_registers(loaded, manifest, ev.tested_parameters(store, loaded))
    info = {
        "folder": str(manifest.folder),
        "fingerprint": chosen.fingerprint,
        "vintage": manifest.vintage,
        "period_start": manifest.period_start.isoformat(),
        "period_end": manifest.period_end.isoformat(),
        "files": list(manifest.files),
        "data_hash": data_hash,
        "supersedes": chosen.supersedes,
    }
    metadata = {"vintage": info["vintage"], "files": len(info["files"]), "data_hash": data_hash,
                "folder": dg.MetadataValue.path(info["folder"]), "fingerprint": chosen.fingerprint,
                "chosen_by": chosen.chosen_by}
    if chosen.supersedes:
        metadata["supersedes"] = chosen.supersedes
    if chosen.note:
        metadata["choice"] = chosen.note
    context.add_output_metadata(metadata)
    return info


def _min_cell(context: dg.AssetExecutionContext, som: SomSettings) -> int:
    """The evaluation spec's ``min_cell`` (default 5) for this partition."""
    try:
        return int(_spec(context, som).spec.min_cell)
    except (ValueError, OSError):  # no readable spec: the project's default rule
        return DEFAULT_MIN_CELL


@dg.multi_asset(
    group_name="ingest",
    partitions_def=PARTITIONS,
    outs={
        "panel": dg.AssetOut(description="Canonical person-year panel (pseudonymised person_id, outcomes, covariates).",
                             code_version=asset_code_version("registers")),
        "treatments": dg.AssetOut(description="Intervention register: person_id, start_year, end_year, arm, course_days.",
                                  code_version=asset_code_version("registers")),
    },
    check_specs=ingest_check_specs(PARTITIONS),
    can_subset=True,  # checks of registers a delivery lacks yield no result: Dagster shows them as skipped
)
def registers(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict):
    """Ingestion of the delivery (checksums, register suites, panel and treatments suites); every expectation's
    outcome is recorded as an asset check, also when a blocking one refuses the delivery."""
    try:
        checked = build_checked(read_manifest(delivery["folder"]), load_key(som.workdir_path()))
    except RefusedDelivery as refused:
        yield from ingest_check_results(refused.validations)
        raise
    yield from ingest_check_results(checked.validations)
    built, min_cell = checked.build, _min_cell(context, som)
    validated = {r.suite for r in checked.validations}
    # counted on the compact frame; the stored panel is the canonical one (DESIGN §3.2 types), streamed to Parquet
    # by the IO manager from a LazyFrame that casts batch by batch (never the whole float64 copy in memory)
    years = built.frame.group_by("year").agg(pl.col("person_id").n_unique().alias("persons"),
                                             pl.len().alias("person_years")).sort("year")
    yield dg.Output(built.panel_lazy(), output_name="panel", metadata={
        "dagster/row_count": built.frame.height,
        "dagster/column_schema": column_schema(pl.DataFrame(schema=built.panel_schema)),
        "persons": suppressed_count(built.frame.get_column("person_id").n_unique(), min_cell),
        "persons_by_year": suppressed_table(years, counts=["persons", "person_years"], min_cell=min_cell),
        "registers_validated": ", ".join(sorted(v.removeprefix("register_") for v in validated if v.startswith("register_"))),
        "data_hash": checked.data_hash,
        "engines": ", ".join(sorted({e for r in checked.validations for e in r.engines})),
    })
    keys = [c for c in ("start_year", "arm") if c in built.treatments.columns]  # a handed-over panel has no arm
    by_start = built.treatments.group_by(keys).agg(pl.col("person_id").n_unique().alias("persons")).sort(keys)
    yield dg.Output(built.treatments, output_name="treatments", metadata={
        **frame_metadata(built.treatments),
        "persons_by_start_year": suppressed_table(by_start, counts=["persons"], min_cell=min_cell),
    })


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS, code_version=asset_code_version("assumptions"),
          description="The approved parameter version whose assumptions are evaluated.")
def assumptions(context: dg.AssetExecutionContext, som: SomSettings) -> dict:
    loaded = _spec(context, som)
    with som.store() as store:
        record = ev.assumptions_version(store, loaded)  # seeds the store; honours the spec's parameter_version
    context.add_output_metadata({"intervention": record.intervention, "version": record.version,
                                 "content_hash": record.content_hash})
    return {"intervention": record.intervention, "version": record.version, "content": record.content,
            "content_hash": record.content_hash}


@dg.multi_asset(
    group_name="evaluate",
    partitions_def=PARTITIONS,
    outs={
        "realised_effects": dg.AssetOut(description="Tidy estimates (DESIGN §3.3): ATT(g,t), event-time and overall effects.",
                                        code_version=asset_code_version("effects")),
        "pretrend_tests": dg.AssetOut(description="Per outcome: Wald pre-trend test, covariance of the event-time "
                                                  "estimates, and the level of inference (cluster, clusters, treated clusters).",
                                      code_version=asset_code_version("effects")),
        "descriptive_contrast": dg.AssetOut(description="SØM's success-vs-non-success contrast by consequence year, "
                                                        "for the descriptive consequence profiles (empty when none).",
                                            code_version=asset_code_version("effects")),
        "duration_effects": dg.AssetOut(description="Duration assumptions of the spec: Cox hazard ratio (treated vs "
                                                    "comparison), Kaplan–Meier survival by arm and follow-up year, the "
                                                    "level of inference (empty when the spec has no durations).",
                                        code_version=asset_code_version("effects")),
    },
)
def effects(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, panel: pl.LazyFrame,
            treatments: pl.DataFrame, assumptions: dict):
    from pipeline.registers.handover import assignment_level

    loaded = _spec(context, som)
    params = parse_parameter_set(assumptions["content"])
    # scanned, not loaded: the register outcomes the evaluation does not use are never read (ev.panel_columns_read)
    panel = panel.select(ev.panel_columns_read(panel.collect_schema().names(), loaded.spec, params)).collect()
    # The design block of the spec selects the estimator; the delivery may say how the intervention was assigned.
    level = assignment_level(delivery["folder"])
    result = ev.realised_effects(panel, treatments, loaded.spec, params, assigned_by=level)
    min_cell = int(loaded.spec.min_cell)
    summary = result.table.filter(pl.col("estimand") != "att_gt").select(
        "outcome", "estimand", "event_time", "estimate", "se", "ci_low", "ci_high", "n_treated")
    yield dg.Output(result.table, output_name="realised_effects", metadata={
        **frame_metadata(result.table), "method": result.metadata["design"],
        "standard_errors": str(result.metadata.get("standard_errors", "")),
        "summary": suppressed_table(summary, counts=["n_treated"], values=["estimate", "se", "ci_low", "ci_high"],
                                    min_cell=min_cell),
    })
    # ≤ 5 treated clusters: randomisation inference over the roll-out, the one test that holds (else nothing runs)
    pre = ev.pretrend_frame(result, ev.rollout_inference(panel, treatments, loaded.spec, params, result,
                                                                   assigned_by=level))
    yield dg.Output(pre, output_name="pretrend_tests", metadata={
        **frame_metadata(pre), "tests": table_metadata(pre.select("outcome", "statistic", "df", "p_value", "cluster",
                                                                 "clusters", "treated_clusters"))})
    contrast = ev.descriptive_contrast(panel, treatments, loaded.spec, params)
    yield dg.Output(contrast, output_name="descriptive_contrast", metadata={
        **frame_metadata(contrast),
        "contrast": suppressed_table(contrast.select("outcome", "event_time", "estimate", "se", "n_treated", "n_control"),
                                     counts=["n_treated", "n_control"], values=["estimate", "se"], min_cell=min_cell)})
    durations = ev.duration_estimates(panel, treatments, loaded.spec, params,
                                      assigned_by=assignment_level(delivery["folder"]))
    yield dg.Output(durations, output_name="duration_effects", metadata={
        **frame_metadata(durations),
        "hazard_ratios": suppressed_table(ev.duration_summary(durations), counts=["n_treated", "n_control"],
                                          values=["estimate", "se", "ci_low", "ci_high"], min_cell=min_cell)})


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS, code_version=asset_code_version("verdicts"),
          description="A verdict per assumption: consistent, refuted-over/underestimated or inconclusive (effects, and "
                      "participants, course length and cost per participant from the registers and a cost file).")
def verdicts(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, assumptions: dict,
             treatments: pl.DataFrame, realised_effects: pl.DataFrame, pretrend_tests: pl.DataFrame,
             descriptive_contrast: pl.DataFrame, duration_effects: pl.DataFrame) -> pl.DataFrame:
    loaded = _spec(context, som)
    params = parse_parameter_set(assumptions["content"])
    with som.store() as store:  # the earlier looks of this evaluation: error control over repeated looks
        looks = ev.look_history(store, loaded.spec.evaluation, data_hash=delivery["data_hash"],
                                data_vintage=delivery["vintage"])
    costs_path = ev.cost_file(loaded, delivery["folder"])
    volumes = ev.volume_verdicts(params, treatments, loaded.spec,
                                 window=ev.observed_window(delivery["period_start"], delivery["period_end"]),
                                 costs=None if costs_path is None else ev.read_costs(costs_path))
    frame = ev.verdict_frame(ev.verdicts(params, realised_effects, pretrend_tests, loaded.spec,
                                         descriptive=descriptive_contrast, durations=duration_effects, looks=looks)
                             + volumes)
    context.add_output_metadata({**frame_metadata(frame), "verdicts": _verdict_table(
        frame, realised_effects, int(loaded.spec.min_cell), duration_effects)})
    return frame


def _verdict_table(frame: pl.DataFrame, realised_effects: pl.DataFrame, min_cell: int,
                   duration_effects: pl.DataFrame | None = None) -> dg.MetadataValue:
    """Verdicts with the number of treated persons behind each outcome's overall estimate (a duration's: its hazard
    ratio; a volume verdict: the persons its evidence counts); a verdict resting on fewer than ``min_cell`` persons
    (or on an unknown number) shows no numbers."""
    import json

    rows = realised_effects.filter(pl.col("estimand") == "overall").select("outcome", "n_treated")
    if duration_effects is not None and duration_effects.height:
        rows = pl.concat([rows, duration_effects.filter(pl.col("estimand") == "log_hazard_ratio")
                          .select("outcome", "n_treated").cast(rows.schema)])
    n = rows.group_by("outcome").agg(pl.col("n_treated").min().alias("n_treated"))
    own = pl.DataFrame({"assumption": frame.get_column("assumption"),
                        "_n": [json.loads(e or "{}").get("n_treated") if json.loads(e or "{}").get("kind") == "volume"
                               else None for e in frame.get_column("evidence")]}, schema={"assumption": pl.Utf8, "_n": pl.Int64})
    table = (frame.select("assumption", "outcome", "label", "assumed", "realised", "ci_low", "ci_high")
             .join(n, on="outcome", how="left").join(own, on="assumption", how="left")
             .with_columns(pl.coalesce("_n", "n_treated").alias("n_treated")).drop("_n"))
    return suppressed_table(table, counts=["n_treated"], values=["realised", "ci_low", "ci_high"], min_cell=min_cell)


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS, code_version=asset_code_version("parameter_candidate"),
          description="The proposed parameter version as a value (nothing written): the blocking check "
                      "proposal_plausible judges it before parameter_proposal writes it.")
def parameter_candidate(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, assumptions: dict,
                        panel: pl.LazyFrame, realised_effects: pl.DataFrame, descriptive_contrast: pl.DataFrame,
                        verdicts: pl.DataFrame) -> dict:
    from som_models.evidence import panel_window

    loaded = _spec(context, som)
    window = panel_window(panel)  # first/last year and persons, scanned (the panel is not loaded whole)
    with som.store() as store:  # read only: the root prior of the update (evidence accounting)
        candidate = ev.proposal_candidate(loaded, assumptions, realised_effects, data_vintage=delivery["vintage"],
                                          data_hash=delivery["data_hash"], descriptive=descriptive_contrast,
                                          store=store, window=window, verdicts=verdicts)
    unverified = parse_parameter_set(candidate["content"]).unverified()
    context.add_output_metadata({"parent_version": candidate["parent_version"], "reason": candidate["reason"],
                                 "unverified": dg.MetadataValue.json({k: list(v) for k, v in unverified.items()})})
    return candidate


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS, code_version=asset_code_version("parameter_proposal"),
          description="The checked proposal written to the store with its run, estimates, verdicts and evidence "
                      "(person-year window; the update's prior is the root prior when the evidence overlaps "
                      "earlier evidence).")
def parameter_proposal(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, assumptions: dict,
                       realised_effects: pl.DataFrame, verdicts: pl.DataFrame, duration_effects: pl.DataFrame,
                       parameter_candidate: dict) -> dict:
    loaded = _spec(context, som)
    with som.store() as store:
        proposal = ev.store_proposal(store, loaded, assumptions, realised_effects, verdicts,
                                     data_vintage=delivery["vintage"], data_hash=delivery["data_hash"],
                                     code_version=code_version(), durations=duration_effects,
                                     candidate=parameter_candidate)
    window = parameter_candidate.get("window") or {}
    min_cell = int(loaded.spec.min_cell)
    context.add_output_metadata({
        **{k: proposal[k] for k in ("version", "status", "parent_version", "reused", "run_id", "reason", "prior_version")},
        "prior_reason": proposal["prior_reason"],
        "evidence_years": f"{window.get('first_year')}–{window.get('last_year')}",
        "evidence_persons": suppressed_count(int(window.get("persons") or 0), min_cell),
    })
    return proposal


@dg.asset(group_name="project", partitions_def=PARTITIONS, code_version=asset_code_version("projections"),
          description="SØM projection of budget consequences: original vs proposed parameters.")
def projections(context: dg.AssetExecutionContext, assumptions: dict, parameter_proposal: dict) -> dict:
    result = ev.projections_document(parse_parameter_set(assumptions["content"]),
                                     parse_parameter_set(parameter_proposal["content"]))
    table = pl.DataFrame([{"parameters": k, **{p: v for p, v in result[k]["npv"].items()},
                           "payback_year": result[k]["payback_year"]} for k in ("before", "after")])
    udvalg = pl.DataFrame([{k: r[k] for k in ("label", "npv_projected", "npv_realised", "npv_difference")}
                           for r in result["udvalg_comparison"]["accounts"]],
                          schema={"label": pl.Utf8, "npv_projected": pl.Float64, "npv_realised": pl.Float64,
                                  "npv_difference": pl.Float64})
    context.add_output_metadata({"npv": table_metadata(table, digits=8), "npv_by_udvalg": table_metadata(udvalg, digits=8)})
    return result


@dg.asset(group_name="report", partitions_def=PARTITIONS, code_version=asset_code_version("audit_report"),
          description="Self-contained HTML audit report of the evaluation.")
def audit_report(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, parameter_proposal: dict,
                 projections: dict) -> str:
    from pipeline.report import collect_check_results, gather, render_report, save_checks

    evaluation, vintage = partition_parts(context)
    checks = collect_check_results(context.instance, context.run_id)
    save_checks(som.workdir_path(), parameter_proposal["run_id"], checks)
    with som.store() as store:
        data = gather(store, run_id=parameter_proposal["run_id"], checks=checks)
    path = render_report(data, som.workdir_path() / "reports" / f"{evaluation}-{vintage}.html",
                         workdir=som.workdir_path(), lang=som.report_language or "da")
    # ``report_path``: the IO manager's own ``path`` metadata names where it stored this value.
    context.add_output_metadata({"report_path": dg.MetadataValue.path(str(path)), "checks_reported": len(checks)})
    return str(path)


class ConsequenceProfilesConfig(dg.Config):
    """What ``consequence_profiles`` estimates (the options of ``som kb consequences``). ``panel``,
    ``target_group``, ``outcomes`` and ``success_outcome`` must be given; they have empty defaults so that no
    run of Dagster's implicit asset job (a backfill of the evaluation assets, which shares that job) needs this
    asset's config — the asset itself refuses to run without them."""

    panel: str = ""
    target_group: str = ""
    outcomes: list[str] = []
    success_outcome: str = ""
    rule: str = "zero"
    delimitation_year: int | None = None
    delimitation_col: str | None = None
    years: int = 10
    covariates: list[str] = []
    factors: list[str] = []
    baseline: bool = False
    id_col: str = "person_id"
    time_col: str = "year"
    min_cell: int = DEFAULT_MIN_CELL
    zero_insignificant: bool = False
    out: str = ""  # default: {workdir}/knowledge/consequences_<target_group>.yaml


@dg.asset(group_name="knowledge", code_version=asset_code_version("consequence_profiles"),
          description="SØM-style consequence profiles (success vs non-success, adjusted; descriptive) from a register "
                      "panel of a target group — the same path as `som kb consequences`.")
def consequence_profiles(context: dg.AssetExecutionContext, som: SomSettings, config: ConsequenceProfilesConfig) -> dict:
    from pathlib import Path

    from pipeline.disclosure import check_min_cell_floor
    from pipeline.kb_consequences import ProfileRequest, build_profiles, write_profiles

    check_min_cell_floor(config.min_cell, None)  # below the floor only through the CLI, with a recorded reason
    missing = [k for k in ("panel", "target_group", "outcomes", "success_outcome") if not getattr(config, k)]
    if missing:
        raise dg.Failure(f"consequence_profiles: give {', '.join(missing)} in the run config (the options of "
                         "`som kb consequences`)")
    if (config.delimitation_year is None) == (config.delimitation_col is None):
        raise dg.Failure("consequence_profiles: give delimitation_year or delimitation_col (one of them)")
    req = ProfileRequest(panel=Path(config.panel), target_group=config.target_group, outcomes=tuple(config.outcomes),
                         success_outcome=config.success_outcome, rule=config.rule,
                         reference=config.delimitation_col or int(config.delimitation_year),  # type: ignore[arg-type]
                         years=config.years, covariates=tuple(config.covariates), factors=tuple(config.factors),
                         baseline=config.baseline, id_col=config.id_col, time_col=config.time_col,
                         min_cell=config.min_cell, zero_insignificant=config.zero_insignificant)
    try:
        doc, table = build_profiles(req)
    except ValueError as exc:
        raise dg.Failure(f"consequence_profiles: {exc}") from None
    out = Path(config.out) if config.out else som.workdir_path() / "knowledge" / f"consequences_{config.target_group}.yaml"
    write_profiles(doc, out)
    shown = table.select("outcome", "event_time", "estimate", "se", "p_value", "significant_5pct", "n_treated",
                         "n_control", "suppressed")
    context.add_output_metadata({
        "profile_file": str(out), "target_group": config.target_group,
        "profiles": {k: len(v["units"]) for k, v in doc["consequences"].items()},
        "not_published": dict(doc["not_published"]),
        "estimates": table_metadata(shown),  # already suppressed: withheld rows are null
        "panel_sha256": doc["provenance"]["panel_sha256"],
    })
    return doc

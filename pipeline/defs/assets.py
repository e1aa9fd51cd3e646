"""The evaluation loop as Dagster assets (thin wrappers over ``pipeline.evaluation`` and ``som_models``).

delivery → panel, treatments → realised_effects, pretrend_tests → verdicts → parameter_proposal →
projections → audit_report; ``assumptions`` is the approved parameter version under evaluation. No
materialisation records person-level data: metadata holds counts, hashes and summary tables only.
"""


import dagster as dg
import polars as pl

from pipeline import evaluation as ev
from pipeline.defs.delivery_config import DeliveryChanged, DeliveryConfig, choose_delivery
from pipeline.defs.partitions import evaluation_partitions, partition_parts
from pipeline.defs.resources import SomSettings
from pipeline.registers import build_panel, delivery_hash, load_key, read_manifest
from pipeline.version import code_version
from som_models.parameters import parse_parameter_set


def _md(df: pl.DataFrame, digits: int = 4) -> dg.MetadataValue:
    """A small summary table as markdown metadata."""
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():
        cells = [f"{v:.{digits}g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


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


@dg.multi_asset(
    group_name="ingest",
    partitions_def=PARTITIONS,
    outs={
        "panel": dg.AssetOut(description="Canonical person-year panel (pseudonymised person_id, outcomes, covariates)."),
        "treatments": dg.AssetOut(description="Intervention register: person_id, start_year, end_year, arm."),
    },
)
def registers(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict):
    manifest = read_manifest(delivery["folder"])
    built = build_panel(manifest, load_key(som.workdir_path()))
    years = built.panel.group_by("year").len().sort("year")
    yield dg.Output(built.panel, output_name="panel", metadata={
        "rows": built.panel.height, "persons": built.panel.get_column("person_id").n_unique(),
        "person_years_by_year": _md(years.rename({"len": "person_years"})),
    })
    yield dg.Output(built.treatments, output_name="treatments", metadata={
        "rows": built.treatments.height,
        "by_start_year": _md(built.treatments.group_by("start_year").len().sort("start_year").rename({"len": "persons"})),
    })


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS,
          description="The approved parameter version whose assumptions are evaluated.")
def assumptions(context: dg.AssetExecutionContext, som: SomSettings) -> dict:
    loaded = _spec(context, som)
    with som.store() as store:
        record = ev.assumptions_version(store, loaded)  # seeds the store; honours the spec's parameter_version
    context.add_output_metadata({"intervention": record.intervention, "version": record.version, "content_hash": record.content_hash})
    return {"intervention": record.intervention, "version": record.version, "content": record.content,
            "content_hash": record.content_hash}


@dg.multi_asset(
    group_name="evaluate",
    partitions_def=PARTITIONS,
    outs={
        "realised_effects": dg.AssetOut(description="Tidy estimates (DESIGN §3.3): ATT(g,t), event-time and overall effects."),
        "pretrend_tests": dg.AssetOut(description="Wald pre-trend test per outcome."),
    },
)
def effects(context: dg.AssetExecutionContext, som: SomSettings, panel: pl.DataFrame, treatments: pl.DataFrame, assumptions: dict):
    loaded = _spec(context, som)
    params = parse_parameter_set(assumptions["content"])
    result = ev.realised_effects(panel, treatments, loaded.spec, params)
    summary = result.table.filter(pl.col("estimand") != "att_gt").select(
        "outcome", "estimand", "event_time", "estimate", "se", "ci_low", "ci_high", "n_treated")
    yield dg.Output(result.table, output_name="realised_effects", metadata={
        "rows": result.table.height, "summary": _md(summary), "method": result.metadata["design"],
    })
    pre = ev.pretrend_frame(result)
    yield dg.Output(pre, output_name="pretrend_tests", metadata={"tests": _md(pre.select("outcome", "statistic", "df", "p_value"))})


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS,
          description="A verdict per assumption: consistent, refuted-over/underestimated or inconclusive.")
def verdicts(context: dg.AssetExecutionContext, som: SomSettings, assumptions: dict, realised_effects: pl.DataFrame,
             pretrend_tests: pl.DataFrame) -> pl.DataFrame:
    loaded = _spec(context, som)
    params = parse_parameter_set(assumptions["content"])
    frame = ev.verdict_frame(ev.verdicts(params, realised_effects, pretrend_tests, loaded.spec))
    context.add_output_metadata({"verdicts": _md(frame.select("assumption", "label", "assumed", "realised", "ci_low", "ci_high"))})
    return frame


@dg.asset(group_name="evaluate", partitions_def=PARTITIONS,
          description="A proposed parameter version, written to the store with its evidence.")
def parameter_proposal(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, assumptions: dict,
                       realised_effects: pl.DataFrame, verdicts: pl.DataFrame) -> dict:
    loaded = _spec(context, som)
    with som.store() as store:
        proposal = ev.store_proposal(store, loaded, assumptions, realised_effects, verdicts,
                                     data_vintage=delivery["vintage"], data_hash=delivery["data_hash"],
                                     code_version=code_version())
    context.add_output_metadata({k: proposal[k] for k in ("version", "status", "parent_version", "reused", "run_id", "reason")})
    return proposal


@dg.asset(group_name="project", partitions_def=PARTITIONS, description="SØM projection of budget consequences: original vs proposed parameters.")
def projections(context: dg.AssetExecutionContext, assumptions: dict, parameter_proposal: dict) -> dict:
    result = ev.projections(parse_parameter_set(assumptions["content"]), parse_parameter_set(parameter_proposal["content"]))
    table = pl.DataFrame([{"parameters": k, **{p: v for p, v in proj.npv.items()}, "payback_year": proj.payback_year}
                          for k, proj in result.items()])
    context.add_output_metadata({"npv": _md(table, digits=8)})
    return {k: v.to_dict() for k, v in result.items()}


@dg.asset(group_name="report", partitions_def=PARTITIONS, description="Self-contained HTML audit report of the evaluation.")
def audit_report(context: dg.AssetExecutionContext, som: SomSettings, delivery: dict, parameter_proposal: dict,
                 projections: dict) -> str:
    from pipeline.report import collect_check_results, gather, render_report, save_checks

    evaluation, vintage = partition_parts(context)
    checks = collect_check_results(context.instance, context.run_id)
    save_checks(som.workdir_path(), parameter_proposal["run_id"], checks)
    with som.store() as store:
        data = gather(store, run_id=parameter_proposal["run_id"], checks=checks)
    path = render_report(data, som.workdir_path() / "reports" / f"{evaluation}-{vintage}.html")
    context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "checks_reported": len(checks)})
    return str(path)

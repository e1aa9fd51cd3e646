"""`som evaluate SPEC`: one evaluation end to end — realised effects, a verdict per assumption, a proposal.

Examples::

    som evaluate assets/evaluations/housing_first_demo.yaml --delivery .som/landing/demo
    som evaluate my_eval.yaml --panel panel.parquet --treatments treatments.csv --json result.json
    som evaluate my_eval.yaml                      # data from the spec's data: section

Either way in — a register delivery, or a panel handed over as a file (any CSV/Parquet person-year table,
columns mapped in the spec) — the same Dagster asset graph runs in-process: a panel is first staged as a
*panel delivery* (``{workdir}/handover/``, see ``pipeline.registers.handover``), so the same checks run and the
same report is written. A blocking check stops the run before the parameters: exit code 3. The run, its
estimates and verdicts and the proposed parameter version are written to the store (``--workdir`` /
``$SOM_HOME`` / ``./.som``, or ``$SOM_DATABASE_URL``). The spec format: docs/evaluation-spec.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pipeline.cli import WorkdirOpt, console, debug_enabled, err, fail, fail_run
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.commands.params import open_store, projection_summary
from pipeline.disclosure import suppress_verdict
from pipeline.tables import npv_table, verdict_table


def register(app: typer.Typer) -> None:
    app.command(name="evaluate")(json_command(evaluate_command))


def evaluate_command(
    spec: Path = typer.Argument(..., help="Evaluation spec (YAML; see docs/evaluation-spec.md)."),
    delivery: Path | None = typer.Option(None, "--delivery", "-d", help="Register delivery folder (with manifest.json)."),
    panel: Path | None = typer.Option(None, "--panel", "-p", help="Person-year panel file (.parquet or .csv)."),
    treatments: Path | None = typer.Option(None, "--treatments", "-t",
                                              help="Treatments file (person id, first treatment year); with --panel."),
    vintage: str | None = typer.Option(None, "--vintage", help="Data vintage label of a panel (default: the file name)."),
    lang: str = typer.Option("", "--lang", "-l", help="Language of the run's audit report: da or en (default: "
                             "SOM_REPORT_LANGUAGE, else da)."),
    workdir: Path | None = WorkdirOpt,
    json_out: Path | None = JsonOpt,
) -> None:
    """One evaluation end to end: verdicts on every assumption and a proposed parameter version.

    Example: som evaluate assets/evaluations/housing_first_demo.yaml --delivery .som/landing/demo
    """
    if vintage is not None and not vintage.strip():
        fail("--vintage must not be empty")
    from pipeline.runner import DEBUG_LOG_LEVEL, QUIET_LOG_LEVEL, EvaluationRefused, evaluate
    from pipeline.workdir import WorkdirError

    try:
        with err.status("Materialising the Dagster asset graph (in-process)…"):
            outcome = evaluate(spec, workdir=workdir, delivery=delivery, panel=panel, treatments=treatments,
                               vintage=vintage, log_level=DEBUG_LOG_LEVEL if debug_enabled() else QUIET_LOG_LEVEL,
                               report_language=lang)
    except (EvaluationRefused, WorkdirError) as exc:
        fail(str(exc), getattr(exc, "exit_code", 2))
    if not outcome.success:
        fail_run(outcome.failures, "the evaluation run stopped, nothing was proposed")
    from pipeline import evaluation as ev

    loaded = ev.load_spec(spec)
    d = outcome.delivery or {}
    source = ({"panel": str(Path(panel).resolve()), "treatments": str(Path(treatments).resolve()) if treatments else None}
              if panel is not None else {"delivery": d.get("folder")})
    doc = run_result(workdir, loaded, outcome.evaluation_run_id, source=source)
    print_result(doc)
    emit_json(json_out, doc)


def run_result(workdir: Path | None, loaded, run_id: int, *, source: dict) -> dict[str, Any]:
    """The result document of the stored evaluation run ``run_id`` (what ``--json`` writes)."""
    with open_store(workdir) as store:
        return _result(store, loaded, store.get_run(run_id), source=source)


def _result(store, loaded, run, *, source: dict) -> dict[str, Any]:
    """The evaluation's result as plain data, read back from the store (what --json writes)."""
    from pipeline import evaluation as ev

    spec = loaded.spec
    tested = store.get_version(spec.intervention, run.tested_version)
    proposed = store.get_version(spec.intervention, run.proposed_version) if run.proposed_version else None
    verdicts = [suppress_verdict(v, spec.min_cell) for v in store.verdicts_for_run(run.id)]
    return {
        "evaluation": spec.evaluation, "intervention": spec.intervention, "spec": str(loaded.path), "source": source,
        "run": {"id": run.id, "data_vintage": run.data_vintage, "data_hash": run.data_hash,
                "code_version": run.code_version, "created_at": run.created_at},
        "settings": {"alpha": spec.verdict.alpha, "equivalence_margin": spec.verdict.margin,
                     "consistency": spec.verdict.consistency, "path_test": spec.verdict.path_test,
                     "min_persons": spec.verdict.min_persons, "update_policy": spec.update_policy,
                     "min_cell": spec.min_cell},
        "tested_version": tested.version,
        "verdicts": verdicts,
        "proposal": None if proposed is None else {
            "version": proposed.version, "status": proposed.status, "parent_version": proposed.parent_version,
            "reason": proposed.reason, "reused": proposed.evaluation_run_id != run.id,
            "content_hash": proposed.content_hash},
        "projections": {"before": projection_summary(tested.content),
                        "after": projection_summary(proposed.content) if proposed else None},
        "udvalg_comparison": ev.udvalg_comparison(tested.content, proposed.content if proposed else None),
    }


def print_result(doc: dict[str, Any]) -> None:
    """The human form of a result document: verdict table, one sentence per verdict, proposal, NPVs."""
    console.print(verdict_table(doc["verdicts"], alpha=doc["settings"]["alpha"],
                                title=f"Verdicts: {doc['evaluation']} on vintage {doc['run']['data_vintage']} "
                                      f"(parameter version {doc['tested_version']})"))
    for v in doc["verdicts"]:
        console.print(f"• {v['assumption']}: {v['sentence']}", highlight=False, soft_wrap=True)
    p = doc["proposal"]
    if p is not None:
        how = (f"same content as existing version {p['version']} ({p['status']}); no new version, this run's evidence "
               "is stored with it" if p["reused"] else f"new version {p['version']} (status {p['status']})")
        console.print(f"Proposal: {how} — {p['reason']}", highlight=False, soft_wrap=True)
    proj = doc["projections"]
    if proj["before"] or proj["after"]:
        console.print(npv_table("Projection (NPV, kr, discounted)",
                                {f"v{doc['tested_version']} (evaluated)": proj["before"],
                                 f"v{p['version']} (proposed)" if p else "proposal": proj["after"]}))
    cmp = doc.get("udvalg_comparison")
    if cmp and cmp["accounts"]:
        from pipeline.commands.project import udvalg_comparison_table

        console.print(udvalg_comparison_table(cmp, "Projected (evaluated version) vs realised (proposal) per udvalg: "
                                                   "NPV, kr"))
    hint = ""
    if p is not None and p["status"] == "proposed":
        hint = f"; to approve: som params approve {doc['intervention']} {p['version']} --reason \"…\""
    console.print(f"Run {doc['run']['id']}{hint}", highlight=False, soft_wrap=True)

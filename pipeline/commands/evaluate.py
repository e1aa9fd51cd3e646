"""`som evaluate SPEC`: one evaluation end to end — realised effects, a verdict per assumption, a proposal.

Examples::

    som evaluate assets/evaluations/housing_first_demo.yaml --delivery .som/landing/demo
    som evaluate my_eval.yaml --panel panel.parquet --treatments treatments.csv --json result.json
    som evaluate my_eval.yaml                      # data from the spec's data: section

With a register delivery the Dagster asset graph runs in-process (GX checks included; a blocking check
stops the run before the parameters: exit code 3). With a panel (any CSV/Parquet person-year table, columns
mapped in the spec) the same plain functions run without Dagster. Either way the run, its estimates and
verdicts and the proposed parameter version are written to the store (``--workdir`` / ``$SOM_HOME`` /
``./.som``, or ``$SOM_DATABASE_URL``). The spec format: docs/evaluation-spec.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from pipeline.cli import EXIT_REFUSED, WorkdirOpt, console, err, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command
from pipeline.commands.params import open_store, projection_summary
from pipeline.disclosure import suppress_verdict
from pipeline.tables import npv_table, verdict_table


def register(app: typer.Typer) -> None:
    app.command(name="evaluate")(json_command(evaluate_command))


def _delivery_route(spec_path: Path, evaluation: str, delivery: Path, home: Path):
    from pipeline.registers import DeliveryError, read_manifest

    try:
        read_manifest(delivery)
    except DeliveryError as exc:
        fail(str(exc))
    if "pipeline.defs.assets" not in sys.modules:
        # The evaluation partitions are read from the spec folder when the definitions load.
        os.environ["SOM_EVALUATIONS_DIR"] = str(spec_path.parent)
    from pipeline.defs.partitions import evaluation_specs
    from pipeline.runner import run_evaluation

    same_id = evaluation_specs(spec_path.parent).get(evaluation)
    if same_id is None or same_id.resolve() != spec_path:
        fail(f"another spec in {spec_path.parent} ({same_id.name if same_id else '?'}) has the evaluation id "
             f"{evaluation!r}; evaluation ids must be unique within a folder")
    from pipeline.defs.assets import PARTITIONS

    keys = PARTITIONS.get_partitions_def_for_dimension("evaluation").get_partition_keys()
    if evaluation not in keys:
        fail(f"evaluation {evaluation!r} is not among the loaded Dagster partitions ({', '.join(keys)}); "
             f"set SOM_EVALUATIONS_DIR={spec_path.parent} before starting")
    with err.status("Materialising the Dagster asset graph (in-process)…"):
        outcome = run_evaluation(home, delivery=delivery, evaluation_spec=str(spec_path))
    if not outcome.success:
        for line in outcome.failures:
            err.print(f"[red]•[/] {line}", highlight=False, soft_wrap=True)
        fail("the evaluation run did not complete (see above); nothing was proposed", EXIT_REFUSED)
    return outcome


def evaluate_command(
    spec: Path = typer.Argument(..., help="Evaluation spec (YAML; see docs/evaluation-spec.md)."),
    delivery: Optional[Path] = typer.Option(None, "--delivery", "-d", help="Register delivery folder (with manifest.json)."),
    panel: Optional[Path] = typer.Option(None, "--panel", "-p", help="Person-year panel file (.parquet or .csv)."),
    treatments: Optional[Path] = typer.Option(None, "--treatments", "-t",
                                              help="Treatments file (person id, first treatment year); with --panel."),
    vintage: Optional[str] = typer.Option(None, "--vintage", help="Data vintage label of a panel (default: the file name)."),
    workdir: Optional[Path] = WorkdirOpt,
    json_out: Optional[Path] = JsonOpt,
) -> None:
    """One evaluation end to end: verdicts on every assumption and a proposed parameter version.

    Example: som evaluate assets/evaluations/housing_first_demo.yaml --delivery .som/landing/demo
    """
    if delivery is not None and (panel is not None or treatments is not None):
        fail("give either --delivery or --panel (+ --treatments), not both")
    if treatments is not None and panel is None:
        fail("--treatments needs --panel")
    if vintage is not None and not vintage.strip():
        fail("--vintage must not be empty")
    from som_models.parameters import ParameterError

    from pipeline import evaluation as ev
    from pipeline.workdir import WorkdirError, prepare_workdir

    try:
        loaded = ev.load_spec(spec)
    except ParameterError as exc:
        fail(str(exc))
    if delivery is None and panel is None:
        delivery = loaded.data_path("delivery")
        panel, treatments = loaded.data_path("panel"), loaded.data_path("treatments")
        if delivery is None and panel is None:
            fail(f"{loaded.path.name}: no data — give --delivery DIR or --panel FILE, or a data: section in the spec")
    if delivery is not None and vintage is not None:
        fail("--vintage applies to panels; a delivery's vintage comes from its manifest")
    try:
        home = prepare_workdir(workdir)
    except WorkdirError as exc:
        fail(str(exc))

    from pipeline.store import StoreError
    from pipeline.version import code_version

    if delivery is not None:
        _delivery_route(loaded.path, loaded.spec.evaluation, Path(delivery).resolve(), home)
        doc = latest_result(home, loaded, source={"delivery": str(Path(delivery).resolve())})
    else:
        with open_store(home, create=True) as store:
            try:
                result = ev.evaluate_panel(store, loaded, Path(panel), Path(treatments) if treatments else None,
                                           data_vintage=vintage, code_version=code_version())
            except (ParameterError, StoreError) as exc:
                fail(str(exc))
            except ValueError as exc:  # estimator refusals (no comparison group, too few periods, …)
                fail(f"cannot estimate the effects: {' '.join(str(exc).split())}")
            run = store.get_run(result.proposal["run_id"])
            doc = _result(store, loaded, run, source={"panel": str(Path(panel).resolve()),
                                                      "treatments": str(Path(treatments).resolve()) if treatments else None})
    print_result(doc)
    emit_json(json_out, doc)


def latest_result(home: Path, loaded, *, source: dict) -> dict[str, Any]:
    """The result document of the latest stored run of ``loaded``'s evaluation (after a delivery run)."""
    with open_store(home) as store:
        runs = [r for r in store.runs(loaded.spec.intervention) if r.evaluation_id == loaded.spec.evaluation]
        return _result(store, loaded, runs[-1], source=source)


def _result(store, loaded, run, *, source: dict) -> dict[str, Any]:
    """The evaluation's result as plain data, read back from the store (what --json writes)."""
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
    hint = ""
    if p is not None and p["status"] == "proposed":
        hint = f"; to approve: som params approve {doc['intervention']} {p['version']} --reason \"…\""
    console.print(f"Run {doc['run']['id']}{hint}", highlight=False, soft_wrap=True)

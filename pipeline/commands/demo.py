"""`som demo` (the whole loop on a synthetic delivery) and `som ui` (the Dagster UI for a workdir).

Two demo scenarios (``--scenario``), each a synthetic world of ``som_models.simulate`` with its evaluation spec:

* ``housing`` (default) — the ``homelessness`` world, ``assets/evaluations/housing_first_demo.yaml``;
* ``youth`` — the ``youth_behaviour`` world, ``assets/evaluations/youth_behaviour_demo.yaml``: SØM's silo example,
  an intervention for young people paid by børne- og ungeudvalget whose gains fall mainly to other payers and, in
  adulthood, to beskæftigelsesudvalget (docs/demo-youth.md).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from pipeline.cli import WorkdirOpt, console, debug_enabled, fail, fail_run
from pipeline.cli_output import JsonOpt, emit_json, json_command


@dataclass(frozen=True)
class DemoScenario:
    """A demo: the synthetic world (``som_models.simulate`` scenario), its evaluation spec and landing folder."""

    world: str
    spec: tuple[str, str]
    landing: str
    story: str


#: the demos by ``--scenario`` name; ``housing`` is the default
DEMOS: Mapping[str, DemoScenario] = {
    "housing": DemoScenario("homelessness", ("evaluations", "housing_first_demo.yaml"), "demo",
                            "Housing First-like intervention for adults in homelessness"),
    "youth": DemoScenario("youth_behaviour", ("evaluations", "youth_behaviour_demo.yaml"), "demo-youth",
                          "MST-like intervention for youths, paid by børne- og ungeudvalget; gains in adulthood"),
}


def register(app: typer.Typer) -> None:
    app.command()(json_command(demo))
    app.command()(ui)


def demo(
    workdir: Path | None = WorkdirOpt,
    persons: int = typer.Option(8000, "--persons", "-n", help="Persons in the synthetic target group (≥ 200)."),
    seed: int = typer.Option(2, "--seed", "-s", help="Random seed of the synthetic world."),
    scenario: str = typer.Option("housing", "--scenario",
                                 help="Demo: housing (Housing First, the default) or youth (paid by børne- og unge, "
                                      "gains to beskæftigelse in adulthood)."),
    xlsx: Path | None = typer.Option(None, "--xlsx", metavar="PATH",
                                     help="Also write the report's workbook (per year, payer and udvalg; as "
                                          "`som report --xlsx`)."),
    keep_history: bool = typer.Option(False, "--keep-history",
                                      help="Record the Dagster run in the workdir's history (for `som ui`); by "
                                           "default the demo runs on an ephemeral Dagster instance, which is faster. "
                                           "The parameter store and the report are written either way."),
    json_out: Path | None = JsonOpt,
) -> None:
    """Run the whole evaluation loop on a synthetic delivery. Example: som demo --workdir /tmp/som --scenario youth

    With --json the result is the `som evaluate --json` document (with projected vs realised per udvalg,
    ``udvalg_comparison``) plus the delivery, the report, the Dagster run and the NPV per udvalg account
    (``payer/udvalg``) of the evaluated and the proposed parameter version (``udvalg``).
    """
    if xlsx is not None and xlsx.suffix.lower() != ".xlsx":
        fail(f"--xlsx {xlsx}: the workbook file name must end in .xlsx")
    if scenario not in DEMOS:
        fail(f"--scenario must be one of {'|'.join(DEMOS)} (got {scenario!r})")
    if persons < 200:
        fail(f"--persons must be at least 200 (got {persons})")
    if seed < 0:
        fail(f"--seed must be non-negative (got {seed})")
    demo_ = DEMOS[scenario]
    from pipeline.workdir import WorkdirError, prepare_workdir

    try:
        home = prepare_workdir(workdir)
    except WorkdirError as exc:
        fail(str(exc))
    started = time.perf_counter()
    from pipeline.commands.evaluate import print_result, run_result
    from pipeline.commands.params import display_url
    from pipeline.evaluation import load_spec
    from pipeline.progress import stages
    from pipeline.runner import (
        DEBUG_LOG_LEVEL,
        QUIET_LOG_LEVEL,
        generate_demo_delivery,
        run_evaluation,
        workdir_instance,
    )
    from som_reference import asset

    spec = asset(*demo_.spec)
    with stages(["Generating a synthetic register delivery", "Materialising the Dagster asset graph (in-process)"]) as step:
        step("Generating a synthetic register delivery")
        folder = generate_demo_delivery(home, persons=persons, seed=seed, name=demo_.landing, scenario=demo_.world)
        step("Materialising the Dagster asset graph (in-process)")
        if keep_history:  # the workdir's instance even when SOM_RUN_HISTORY=off: the flag asks for it
            instance = workdir_instance(home)
        else:
            import dagster as dg

            instance = dg.DagsterInstance.ephemeral()
        outcome = run_evaluation(home, delivery=folder, evaluation_spec=str(spec), instance=instance,
                                 log_level=DEBUG_LOG_LEVEL if debug_enabled() else QUIET_LOG_LEVEL)
    console.print(f"Demo {scenario}: {demo_.story}", soft_wrap=True, highlight=False)
    console.print(f"Delivery: {folder} ({persons} persons, seed {seed}; planted truth in truth.json)", soft_wrap=True)
    if not outcome.success:
        fail_run(outcome.failures, "the evaluation run did not complete")
    doc = run_result(home, load_spec(spec), outcome.evaluation_run_id, source={"delivery": str(folder)})
    udvalg = account_npv(outcome.projections)
    doc.update(report=outcome.report, dagster_run_id=outcome.run_id if keep_history else None, scenario=scenario,
               udvalg=udvalg)
    print_result(doc)
    if any(udvalg.values()):
        console.print(who_pays_who_gains(udvalg["after"] or udvalg["before"]), soft_wrap=True, highlight=False)
    console.print(f"Parameter store: {display_url(outcome.database)}", soft_wrap=True, highlight=False)
    console.print(f"Report: {outcome.report}", soft_wrap=True, highlight=False)
    if xlsx is not None:
        doc["xlsx"] = str(_write_workbook(home, outcome.database, doc["intervention"], xlsx))
        console.print(f"Workbook written: {xlsx}", soft_wrap=True, highlight=False)
    if not keep_history:
        console.print("The Dagster run was not kept in the workdir's history (--keep-history keeps it for `som ui`).",
                      soft_wrap=True, highlight=False)
    console.print(f"Finished in {time.perf_counter() - started:.1f} s.")
    emit_json(json_out, doc)


def account_npv(projections: Mapping[str, Any]) -> dict[str, dict[str, float] | None]:
    """The NPV per udvalg account (``payer/udvalg``, every payer; the udvalg ledger,
    som_models/projection/ledger.py) of the ``projections`` asset's two projections (``before`` = the evaluated
    parameter version, ``after`` = the proposal); None for a projection without a ledger."""
    out: dict[str, dict[str, float] | None] = {}
    for key in ("before", "after"):
        accounts = ((projections.get(key) or {}).get("udvalg") or {}).get("accounts")
        out[key] = {str(a["label"]): float(a["npv"]) for a in accounts} if accounts else None
    return out


def who_pays_who_gains(npv: Mapping[str, float] | None) -> str:
    """One sentence: the udvalg accounts with a net cost (they invest) and those with a net gain, largest first
    (the payers' ``unassigned`` remainders left out)."""
    if not npv:
        return "Who pays, who gains: the projection has no udvalg ledger."
    named = {k: v for k, v in npv.items() if not k.endswith("/unassigned")}
    pays = sorted((k for k, v in named.items() if v < 0), key=lambda k: named[k])
    gains = sorted((k for k, v in named.items() if v > 0), key=lambda k: -named[k])

    def listed(keys: list[str]) -> str:
        return ", ".join(f"{k} ({named[k]:+,.0f} kr)" for k in keys) or "none"

    return f"Who pays, who gains (NPV by udvalg, payer/udvalg): pays — {listed(pays)}; gains — {listed(gains)}."


def _write_workbook(home: Path, database: str, intervention: str, target: Path) -> Path:
    """The report's workbook of the demo's evaluation (the `som report --xlsx` path: gather, build, write)."""
    from pipeline.report import build_report, gather
    from pipeline.report.xlsx import write_report_xlsx
    from pipeline.store import ParameterStore

    with ParameterStore(database) as store:
        data = gather(store, intervention=intervention, workdir=home)
    try:
        return write_report_xlsx(target, build_report(data, workdir=home).document)
    except OSError as exc:
        fail(f"--xlsx {target}: cannot be written ({exc.strerror or exc})")
        raise


def ui(workdir: Path | None = WorkdirOpt, port: int = typer.Option(3000, help="Port of the web UI.")) -> None:
    """Serve the Dagster UI for this workdir (dagster dev). Example: som ui --port 3000"""
    from pipeline.workdir import WorkdirError, dagster_home, prepare_workdir

    try:
        home = prepare_workdir(workdir)
    except WorkdirError as exc:
        fail(str(exc))
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home(home)), SOM_HOME=str(home))
    from pipeline.workdir import dagster_dev_command

    os.chdir(home)
    os.execvpe(sys.executable, dagster_dev_command(port), env)



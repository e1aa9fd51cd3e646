"""`som demo` (the whole loop on a synthetic delivery) and `som ui` (the Dagster UI for a workdir)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer

from pipeline.cli import WorkdirOpt, console, debug_enabled, fail, fail_run
from pipeline.cli_output import JsonOpt, emit_json, json_command


def register(app: typer.Typer) -> None:
    app.command()(json_command(demo))
    app.command()(ui)


def demo(
    workdir: Path | None = WorkdirOpt,
    persons: int = typer.Option(8000, "--persons", "-n", help="Persons in the synthetic target group (≥ 200)."),
    seed: int = typer.Option(2, "--seed", "-s", help="Random seed of the synthetic world."),
    json_out: Path | None = JsonOpt,
) -> None:
    """Run the whole evaluation loop on a synthetic delivery. Example: som demo --workdir /tmp/som

    With --json the result is the `som evaluate --json` document plus the delivery, the report and the Dagster run.
    """
    if persons < 200:
        fail(f"--persons must be at least 200 (got {persons})")
    if seed < 0:
        fail(f"--seed must be non-negative (got {seed})")
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
    from pipeline.runner import DEBUG_LOG_LEVEL, QUIET_LOG_LEVEL, generate_demo_delivery, run_evaluation
    from pipeline.workdir import DEFAULT_SPEC

    with stages(["Generating a synthetic register delivery", "Materialising the Dagster asset graph (in-process)"]) as step:
        step("Generating a synthetic register delivery")
        folder = generate_demo_delivery(home, persons=persons, seed=seed)
        step("Materialising the Dagster asset graph (in-process)")
        outcome = run_evaluation(home, delivery=folder,
                                 log_level=DEBUG_LOG_LEVEL if debug_enabled() else QUIET_LOG_LEVEL)
    console.print(f"Delivery: {folder} ({persons} persons, seed {seed}; planted truth in truth.json)", soft_wrap=True)
    if not outcome.success:
        fail_run(outcome.failures, "the evaluation run did not complete")
    doc = run_result(home, load_spec(DEFAULT_SPEC), outcome.evaluation_run_id, source={"delivery": str(folder)})
    doc.update(report=outcome.report, dagster_run_id=outcome.run_id)
    print_result(doc)
    console.print(f"Parameter store: {display_url(outcome.database)}", soft_wrap=True, highlight=False)
    console.print(f"Report: {outcome.report}", soft_wrap=True, highlight=False)
    console.print(f"Finished in {time.perf_counter() - started:.1f} s.")
    emit_json(json_out, doc)


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



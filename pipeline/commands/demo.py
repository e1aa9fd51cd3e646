"""`som demo` (the whole loop on a synthetic delivery) and `som ui` (the Dagster UI for a workdir)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from pipeline.cli import EXIT_REFUSED, WorkdirOpt, console, err, fail


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(ui)


def demo(
    workdir: Optional[Path] = WorkdirOpt,
    persons: int = typer.Option(3000, "--persons", "-n", help="Persons in the synthetic target group (≥ 200)."),
    seed: int = typer.Option(2, "--seed", "-s", help="Random seed of the synthetic world."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the verdicts, NPVs and report path as JSON here ('-' = stdout)."),
) -> None:
    """Run the whole evaluation loop on a synthetic delivery. Example: som demo --workdir /tmp/som"""
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
    from pipeline.runner import generate_demo_delivery, run_evaluation

    from pipeline.progress import stages

    with stages(["Generating a synthetic register delivery", "Materialising the Dagster asset graph (in-process)"]) as step:
        step("Generating a synthetic register delivery")
        folder = generate_demo_delivery(home, persons=persons, seed=seed)
        step("Materialising the Dagster asset graph (in-process)")
        outcome = run_evaluation(home, delivery=folder)
    console.print(f"Delivery: {folder} ({persons} persons, seed {seed}; planted truth in truth.json)", soft_wrap=True)
    if not outcome.success:
        for line in outcome.failures:
            err.print(f"[red]•[/] {line}", highlight=False)
        fail("the evaluation run did not complete (see above)", EXIT_REFUSED)
    if json_out is not None:
        import json

        doc = json.dumps({"verdicts": list(outcome.verdicts), "npv": {k: p["npv"] for k, p in outcome.projections.items()},
                          "payback_year": {k: p["payback_year"] for k, p in outcome.projections.items()},
                          "versions": outcome.versions, "report": outcome.report, "run_id": outcome.run_id},
                         indent=2, default=str)
        if str(json_out) == "-":
            print(doc)
            return
        json_out.write_text(doc, encoding="utf-8")
    _print_outcome(outcome)
    console.print(f"Finished in {time.perf_counter() - started:.1f} s.")


def _print_outcome(outcome) -> None:
    table = Table(title="Verdicts on the original assumptions")
    table.add_column("assumption", overflow="fold", min_width=20)
    table.add_column("verdict", no_wrap=True)
    for col in ("assumed", "realised", "95 % CI"):
        table.add_column(col, justify="right")
    colours = {"consistent": "green", "inconclusive": "yellow"}
    for v in outcome.verdicts:
        ci = "" if v["ci_low"] is None else f"{v['ci_low']:.3g} to {v['ci_high']:.3g}"
        colour = colours.get(v["label"], "red")
        table.add_row(v["assumption"], f"[{colour}]{v['label']}[/]", f"{v['assumed']:.3g}",
                      "" if v["realised"] is None else f"{v['realised']:.3g}", ci)
    console.print(table)
    npv = Table(title="Projection (NPV, kr, discounted)")
    for col in ("parameters", "kommune", "region", "stat", "total", "payback year"):
        npv.add_column(col, justify="right" if col not in ("parameters",) else "left")
    for name, p in outcome.projections.items():
        label = f"{name} (v{outcome.versions[name]})"
        npv.add_row(label, *(f"{p['npv'][k]:,.0f}" for k in ("kommune", "region", "stat", "total")), str(p["payback_year"] or "none"))
    console.print(npv)
    console.print(f"Proposed parameter version {outcome.versions['after']} (status proposed) stored in {outcome.database}", soft_wrap=True)
    console.print(f"Report: {outcome.report}", soft_wrap=True)


def ui(workdir: Optional[Path] = WorkdirOpt, port: int = typer.Option(3000, help="Port of the web UI.")) -> None:
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



"""`som generate`: write a synthetic DST-style register delivery with planted effects (the known-truth world)."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import console, fail
from pipeline.cli_output import JsonOpt, emit_json, json_command

SCENARIOS = ("homelessness", "youth_crime", "youth_behaviour", "children_placed", "small")
FORMATS = ("parquet", "csv", "csv-dk", "sas")


def register(app: typer.Typer) -> None:
    app.command()(json_command(generate))


def generate(
    out: Path = typer.Option(..., "--out", "-o",
                             help="Folder to write the delivery to (must not exist or be empty, unless --force)."),
    persons: int = typer.Option(3000, "--persons", "-n", help="Persons in the world (target group and background population)."),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed of the world."),
    scenario: str = typer.Option("homelessness", "--scenario", help=f"World: {', '.join(SCENARIOS)}."),
    fmt: str = typer.Option("parquet", "--format", "-f",
                            help="parquet, csv (UTF-8, ','), csv-dk (';', decimal comma, Latin-1) or sas (.xpt)."),
    first_year: int | None = typer.Option(None, "--first-year",
                                          help="First year of the delivery period (default: the scenario's)."),
    last_year: int | None = typer.Option(None, "--last-year", help="Last year of the delivery period (default: the scenario's)."),
    target_share: float | None = typer.Option(None, "--target-share", help="Share of persons in the target group, in (0, 1]."),
    truth_panel: bool | None = typer.Option(None, "--truth-panel/--no-truth-panel",
                                               help="Write truth_panel.parquet (the expected panel row by row; default up to "
                                                    "200 000 persons)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing non-empty output folder."),
    json_out: Path | None = JsonOpt,
) -> None:
    """Write a complete synthetic delivery (every register, manifest.json, truth.json). Example:
    som generate --out /tmp/delivery --persons 5000 --seed 7 --scenario youth_crime --format sas"""
    if scenario not in SCENARIOS:
        fail(f"--scenario must be one of {', '.join(SCENARIOS)} (got {scenario!r})")
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if persons < 20:
        fail(f"--persons must be at least 20 (got {persons})")
    if seed < 0:
        fail(f"--seed must be non-negative (got {seed})")
    if target_share is not None and not 0 < target_share <= 1:
        fail(f"--target-share must be in (0, 1] (got {target_share})")
    if first_year is not None and last_year is not None and last_year < first_year:
        fail(f"--last-year {last_year} is before --first-year {first_year}")
    out = out.expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        fail(f"{out} exists and is not an empty folder; use --force to replace it")
    import time

    from pipeline.atomic import atomic_dir
    from pipeline.progress import stages
    from som_models.simulate import simulate, write_delivery

    started = time.perf_counter()
    try:
        with atomic_dir(out) as staging:
            with stages([f"Simulating {persons:,} persons ({scenario}, seed {seed})", f"Writing the delivery ({fmt})"]) as step:
                step(f"Simulating {persons:,} persons ({scenario}, seed {seed})")
                try:
                    sim = simulate(scenario, persons, seed, first_year=first_year, last_year=last_year,
                                   target_share=target_share, keep_expected=truth_panel)
                except ValueError as exc:
                    fail(str(exc))
                step(f"Writing the delivery ({fmt})")
                write_delivery(sim, staging, fmt, truth_panel=truth_panel is not False)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    truth = sim.truth
    files = len(sim.frames) + (1 if sim.dream is not None else 0)
    console.print(f"Delivery: {out} — {files} register files ({fmt}), period {sim.manifest['period_start']} to "
                  f"{sim.manifest['period_end']}, vintage {sim.manifest['vintage']}", soft_wrap=True)
    console.print(f"World: {scenario}, {truth['population']['persons']:,} persons "
                  f"({truth['population']['target_group']:,} in the target group), "
                  f"{truth.get('participants', 0):,} participants; "
                  f"planted truth in truth.json. {time.perf_counter() - started:.1f} s", soft_wrap=True)
    emit_json(json_out, {"delivery": str(out), "files": files, "format": fmt, "scenario": scenario, "seed": seed,
                         "vintage": sim.manifest["vintage"], "period_start": sim.manifest["period_start"],
                         "period_end": sim.manifest["period_end"], "population": truth["population"],
                         "participants": truth.get("participants", 0)})

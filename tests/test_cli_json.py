"""The ``--json PATH|-`` contract of every `som` command that has ``--json``.

``--json -``: standard output holds exactly one strict JSON document (NaN/Infinity are errors) and the human
output goes to standard error. ``--json PATH``: the file is written (strict JSON) and the human output,
ending with ``Wrote PATH``, goes to standard output.

The commands that run long, external work (the Dagster graph, the simulator, ingestion with its progress
output) run through the installed ``som`` entry point in a subprocess, so output written by libraries to the
process's real standard output would be caught; the others run in-process.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
SOM = shutil.which("som", path=str(Path(sys.executable).parent)) or "som"
SPEC = ROOT / "assets" / "evaluations" / "housing_first_demo.yaml"
HF = "housing_first_demo"
runner = CliRunner()


def strict(text: str):
    """Parse ``text`` as one strict JSON document (non-standard constants raise)."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def som(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([SOM, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A workdir after `som demo --persons 300` and a generated, ingested delivery (each run once)."""
    base = tmp_path_factory.mktemp("json-contract")
    work = base / "work"
    demo = som("demo", "--persons", "300", "--workdir", str(work), "--json", "-", cwd=base)
    generated = som("generate", "--out", str(base / "delivery"), "--persons", "300", "--seed", "3", "--json", "-", cwd=base)
    ingested = som("ingest", str(base / "delivery"), "--out", str(base / "panel"), "--workdir", str(work),
                   "--gx-rows", "0", "--json", "-", cwd=base)
    return {"base": base, "work": work, "demo": demo, "generate": generated, "ingest": ingested}


@pytest.mark.parametrize("command", ["demo", "generate", "ingest"])
def test_subprocess_commands_write_only_json_to_stdout(world, command):
    result = world[command]
    doc = strict(result.stdout)
    assert isinstance(doc, dict) and doc
    assert result.stderr.strip(), "the human output goes to standard error"
    if command == "demo":
        assert doc["intervention"] == HF and doc["tested_version"] == 1 and doc["proposal"]["version"] == 2
        assert {v["assumption"] for v in doc["verdicts"]} >= {"success_rate"}
        assert Path(doc["report"]).is_file() and "Verdicts" in result.stderr
    elif command == "generate":
        assert doc["population"]["persons"] == 300 and Path(doc["delivery"]).is_dir()
    else:
        assert Path(doc["panel"]).is_file() and doc["rows"]["persons"] == 300


def _in_process(world) -> list[tuple[str, list[str]]]:
    w = ["--workdir", str(world["work"])]
    panel = world["base"] / "panel"
    return [
        ("estimate", ["estimate", str(panel / "panel.parquet"), "--treatments", str(panel / "treatments.parquet"),
                      "--id", "person_id", "--time", "year", "--outcome", "shelter_nights", "--group", "start_year"]),
        ("evaluate", ["evaluate", str(SPEC), "--panel", str(panel / "panel.parquet"), "--treatments",
                      str(panel / "treatments.parquet"), *w]),
        ("params list", ["params", "list", *w]),
        ("params show", ["params", "show", HF, "--version", "2", *w]),
        ("params history", ["params", "history", HF, *w]),
        ("params diff", ["params", "diff", HF, "1", "2", *w]),
        ("audit", ["audit", HF, *w]),
        ("project", ["project", "--intervention", HF, "--version", "2", "--draws", "200", *w]),
        ("report", ["report", "--intervention", HF, "--out", str(world["base"] / "report.html"), *w]),
        ("kb search", ["kb", "search", "housing"]),
        ("kb show", ["kb", "show", "voksne_i_hjemloeshed"]),
        ("kb pool", ["kb", "pool", "--outcome", "stable_housing", "--measure", "share_of_time"]),
        ("params reject", ["params", "reject", HF, "3", "--reason", "test", "--by", "tester", *w]),
        ("params approve", ["params", "approve", HF, "2", "--reason", "test", "--by", "tester", *w]),
    ]


def test_every_other_command_writes_only_json_to_stdout(world):
    for name, args in _in_process(world):
        result = runner.invoke(app, [*args, "--json", "-"])
        assert result.exit_code == 0, (name, result.output[-2000:])
        doc = strict(result.stdout)
        assert doc, name
        assert "Wrote" not in result.stdout
        if name == "estimate":
            assert all(math.isfinite(r["estimate"]) for r in doc["estimates"] if r["estimate"] is not None)
            assert "Realised effects" in result.stderr
        if name == "evaluate":
            assert doc["proposal"]["version"] == 3 and "Verdicts" in result.stderr
        if name == "params approve":
            assert doc["status"] == "approved" and doc["superseded_version"] == 1


def test_json_path_writes_the_file_and_prints_the_human_output(world, tmp_path):
    out = tmp_path / "sub" / "list.json"
    result = runner.invoke(app, ["params", "list", "--workdir", str(world["work"]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert strict(out.read_text())["interventions"][0]["intervention"] == HF
    assert "Parameter sets" in result.stdout and f"Wrote {out}" in result.stdout
    assert not list(out.parent.glob(".*.tmp")), "no temporary file is left behind"


def test_json_path_that_cannot_be_written_is_one_line(world, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["kb", "show", "voksne_i_hjemloeshed", "--json", str(blocker / "out.json")])
    assert result.exit_code == 2
    assert "could not write" in result.stderr and "Traceback" not in result.output

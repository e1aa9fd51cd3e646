"""Hostile specs, parameter files and user text (issue 16, item 1 outside register files).

* YAML anchors/aliases (an alias bomb), control characters and over-long strings are refused by the one YAML
  loader, before anything is expanded or stored;
* user text reaches the console as plain text, never as rich markup (``--reason "[/x]"``);
* ``min_cell`` below the agency's floor needs a recorded override; a positive cost is an error;
* ``som evaluate`` on a refused delivery prints one line (file, column, rule, rows) and no Dagster stack trace;
* concurrent first starts on a fresh workdir and store do not race.
"""

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing as mp
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from pipeline import evaluation as ev
from pipeline.cli import app
from pipeline.disclosure import MIN_CELL_FLOOR, check_min_cell_floor
from pipeline.store import ParameterStore, StoreError, database_url
from som_models.evaluation_spec import MIN_CELL_FLOOR as SPEC_FLOOR
from som_models.evaluation_spec import parse_evaluation_spec
from som_models.parameters import ParameterError, parse_parameter_set
from som_reference.strict_yaml import AliasError, UnsafeTextError, loads_yaml

ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = ROOT / "assets" / "parameters" / "housing_first_demo.yaml"
SEED = yaml.safe_load(SEED_FILE.read_text(encoding="utf-8"))
DEMO_SPEC = ROOT / "assets" / "evaluations" / "housing_first_demo.yaml"
HF = "housing_first_demo"
MINIMAL = {"evaluation": "e", "intervention": HF, "parameters": "p.yaml"}
runner = CliRunner()

#: nine levels of nine aliases: 9**9 ≈ 387 million strings once expanded, in about 425 bytes
ALIAS_BOMB = ("evaluation: bomb\nintervention: housing_first_demo\nparameters: ../parameters/housing_first_demo.yaml\n"
              'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
              + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
              + "title: *i\n")


def place_spec(tmp_path: Path, text: str, seed_text: str | None = None) -> Path:
    """A spec at tmp/evaluations/spec.yaml with the demo parameter file (or ``seed_text``) at tmp/parameters/."""
    (tmp_path / "parameters").mkdir(exist_ok=True)
    seed = tmp_path / "parameters" / "housing_first_demo.yaml"
    if seed_text is None:
        shutil.copy(SEED_FILE, seed)
    else:
        seed.write_text(seed_text, encoding="utf-8")
    (tmp_path / "evaluations").mkdir(exist_ok=True)
    path = tmp_path / "evaluations" / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def spec_text(**extra) -> str:
    doc = {"evaluation": "hf", "intervention": HF, "parameters": "../parameters/housing_first_demo.yaml", **extra}
    return yaml.safe_dump(doc, allow_unicode=True)


# --------------------------------------------------------------------------- YAML: aliases, control text, length

def test_the_alias_bomb_is_refused_before_it_expands(tmp_path):
    assert 400 <= len(ALIAS_BOMB.encode()) <= 460
    path = place_spec(tmp_path, ALIAS_BOMB)
    start = time.perf_counter()
    with pytest.raises(ParameterError, match=r"spec\.yaml.*line 4: YAML anchors and aliases .* are not allowed"):
        ev.load_spec(path)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(AliasError) as info:
        loads_yaml(ALIAS_BOMB, "bomb.yaml")
    assert info.value.line == 4 and "lol" not in str(info.value)


@pytest.mark.parametrize("text", [
    "a: &x 1\n",                       # an anchor alone
    "a: 1\nb: *x\n",                   # an alias (undefined: still refused as an alias)
    "base: &b {a: 1}\nitem:\n  <<: *b\n",  # a merge key through an alias
])
def test_every_anchor_and_alias_is_refused(text):
    with pytest.raises(AliasError, match="anchors and aliases"):
        loads_yaml(text, "x.yaml")


def test_the_cli_refuses_the_alias_bomb_in_one_line_and_writes_nothing(tmp_path):
    path = place_spec(tmp_path, ALIAS_BOMB)
    work = tmp_path / "w"
    result = runner.invoke(app, ["evaluate", str(path), "--workdir", str(work), "--panel", str(tmp_path / "p.csv")])
    assert result.exit_code == 2, result.output
    assert "anchors and aliases" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not work.exists()


@pytest.mark.parametrize(("title", "code"), [
    ('"before\\0after"', "U+0000"),             # NUL
    ('"\\e[31mred\\e[0m"', "U+001B"),           # a terminal escape sequence
    ('"bell\\a"', "U+0007"),
    ('"C1 \\x9b control"', "U+009B"),
    ('"carriage\\rreturn"', "U+000D"),
])
def test_control_characters_in_a_spec_title_are_refused(tmp_path, title, code):
    text = spec_text().replace("evaluation: hf\n", f"evaluation: hf\ntitle: {title}\n")
    with pytest.raises(ParameterError, match=rf"spec\.yaml: not valid YAML \(line \d+: a string holds the control "
                                             rf"character {re.escape(code)}"):
        ev.load_spec(place_spec(tmp_path, text))


def test_control_characters_in_keys_and_parameter_files_are_refused(tmp_path):
    with pytest.raises(UnsafeTextError, match=r"U\+0000"):
        loads_yaml('"k\\0": 1\n', "k.yaml")
    seed = SEED_FILE.read_text(encoding="utf-8").replace("title:", 'title: "x\\e]0;pwned\\a"\nold_title:', 1)
    with pytest.raises(ParameterError, match=r"housing_first_demo\.yaml.*control character U\+001B"):
        ev.load_spec(place_spec(tmp_path, spec_text(), seed_text=seed))


def test_tabs_newlines_and_unicode_text_are_kept(tmp_path):
    text = spec_text(title="Housing First — Aarhus, 2023 [pilot] æøå").replace(
        "evaluation: hf\n", "evaluation: hf\nnotes: |\n  first line\n  \tindented second line\n")
    loaded = ev.load_spec(place_spec(tmp_path, text))
    assert loaded.spec.title == "Housing First — Aarhus, 2023 [pilot] æøå"
    assert loaded.spec.document["notes"] == "first line\n\tindented second line\n"


def test_over_long_strings_and_files_are_refused(tmp_path):
    with pytest.raises(ParameterError, match=r"a string is 10,001 characters long \(at most 10,000\)"):
        ev.load_spec(place_spec(tmp_path, spec_text(title="x" * 10_001)))
    assert ev.load_spec(place_spec(tmp_path, spec_text(title="x" * 10_000))).spec.title == "x" * 10_000
    big = "items:\n" + "".join(f"  - {i:09d}\n" for i in range(160_000))
    with pytest.raises(yaml.YAMLError, match="too large for a YAML file"):
        loads_yaml(big, "big.yaml")


# --------------------------------------------------------------------------- user text: stored, printed plain

@pytest.fixture
def store_env(tmp_path):
    work = tmp_path / "work"
    url = f"sqlite:///{work / 'som.db'}"
    with ParameterStore(url) as store:
        store.ensure_parameter_set(HF, SEED, title=SEED["title"], source="housing_first_demo.yaml")
        run = store.record_run(evaluation_id="ev", intervention=HF, data_vintage="2023-06", data_hash="h" * 64,
                               code_version="c", spec={}, tested_version=1)
        variant = copy.deepcopy(SEED)
        variant["success_rate"] = {**variant["success_rate"], "value": 0.2}
        store.propose_version(intervention=HF, parent_version=1, content=variant, reason="rate [bold]0.2[/bold]",
                              run_id=run.id, data_vintage="2023-06", data_hash="h" * 64, code_version="c",
                              evidence={}, estimates=[], verdicts=[])
    return {"SOM_DATABASE_URL": "", "SOM_HOME": str(work), "SOM_USER": "tester"}


@pytest.mark.parametrize("reason", ["[/x]", "[bold red]not markup[/]", "[link=file:///etc/passwd]x[/link]", "a [/] b"])
def test_markup_in_a_reason_is_printed_as_plain_text_for_good(store_env, reason):
    approved = runner.invoke(app, ["params", "approve", HF, "2", "--reason", reason, "--by", "[/by]"], env=store_env)
    assert approved.exit_code == 0, approved.output
    for args in (["history", HF], ["show", HF], ["show", HF, "--version", "2"], ["list"]):
        result = runner.invoke(app, ["params", *args], env=store_env)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
    shown = runner.invoke(app, ["params", "show", HF], env=store_env).stdout
    assert "reason: rate [bold]0.2[/bold]" in shown
    assert f"decision reason: {reason}" in shown and "decided by: [/by]" in shown
    history = json.loads(runner.invoke(app, ["params", "history", HF, "--json", "-"], env=store_env).stdout)["versions"]
    assert (history[1]["decision_reason"], history[1]["decided_by"]) == (reason, "[/by]")
    table = runner.invoke(app, ["params", "history", HF], env=store_env).stdout
    assert "[/by]" in table  # the table (its cells may fold long text) shows the text as it is


@pytest.mark.parametrize(("reason", "problem"), [
    ("ok\x1b[2Jcleared", "control character U+001B"),
    ("nul\x00", "control character U+0000"),
    ("x" * 10_001, "10,001 characters long"),
])
def test_control_characters_and_huge_reasons_are_refused_by_the_store(store_env, reason, problem):
    result = runner.invoke(app, ["params", "approve", HF, "2", "--reason", reason], env=store_env)
    assert result.exit_code == 2, result.output
    assert problem in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "\x1b" not in result.output and "\x00" not in result.output
    history = json.loads(runner.invoke(app, ["params", "history", HF, "--json", "-"], env=store_env).stdout)
    assert [v["status"] for v in history["versions"]] == ["approved", "proposed"]  # nothing was decided


def test_the_store_refuses_control_characters_in_every_text_field(tmp_path):
    with ParameterStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        with pytest.raises(StoreError, match=r"title holds the control character U\+001B"):
            store.ensure_parameter_set(HF, SEED, title="\x1b[31mred", source="x.yaml")
        assert store.interventions() == []


def test_error_messages_are_printed_as_plain_text(tmp_path):
    missing = tmp_path / "[bold]no[/] such [/x] spec.yaml"
    result = runner.invoke(app, ["evaluate", str(missing), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "[/x] spec.yaml" in result.stderr, result.output


# --------------------------------------------------------------------------- the small-cell floor

def test_min_cell_below_the_floor_is_refused_without_an_override():
    assert MIN_CELL_FLOOR == SPEC_FLOOR == 5
    for value in (1, 3, 4):
        with pytest.raises(ParameterError, match=rf"min_cell: {value} is below the agency's small-cell floor of 5.*"
                                                 r"min_cell_override"):
            parse_evaluation_spec({**MINIMAL, "min_cell": value})
    assert parse_evaluation_spec({**MINIMAL, "min_cell": 5}).min_cell == 5
    assert parse_evaluation_spec({**MINIMAL, "min_cell": 11}).min_cell == 11
    assert parse_evaluation_spec(MINIMAL).min_cell == 5


def test_an_explicit_override_is_accepted_and_kept_in_the_spec_document():
    override = {"value": 3, "reason": "the data owner approved cells of 3 for this pilot (mail of 2024-02-01)"}
    spec = parse_evaluation_spec({**MINIMAL, "min_cell": 3, "min_cell_override": override})
    assert spec.min_cell == 3 and spec.document["min_cell_override"] == override  # stored with every run


@pytest.mark.parametrize(("doc", "message"), [
    ({"min_cell": 3, "min_cell_override": {"value": 2, "reason": "r"}}, "does not match min_cell 3"),
    ({"min_cell": 3, "min_cell_override": {"value": 3}}, "min_cell_override.reason: required key missing"),
    ({"min_cell": 3, "min_cell_override": {"value": 3, "reason": "  "}}, "expected a non-empty string"),
    ({"min_cell": 3, "min_cell_override": 3}, "min_cell_override: expected a mapping"),
    ({"min_cell": 5, "min_cell_override": {"value": 5, "reason": "r"}}, "is not below the floor of 5"),
    ({"min_cell_override": {"value": 3, "reason": "r"}}, "does not match min_cell 5"),
    ({"min_cell": 3, "min_cell_override": {"value": 3, "reason": "r", "by": "me"}}, "min_cell_override.by: unknown key"),
])
def test_a_malformed_override_is_refused(doc, message):
    with pytest.raises(ParameterError, match=message):
        parse_evaluation_spec({**MINIMAL, **doc})


def test_the_cli_floor_needs_a_reason():
    with pytest.raises(ValueError, match=r"below the agency's small-cell floor of 5.*--min-cell-reason"):
        check_min_cell_floor(1, None)
    assert check_min_cell_floor(3, " pilot ") == {"value": 3, "reason": "pilot"}
    assert check_min_cell_floor(5, None) is None
    with pytest.raises(ValueError, match="only for a --min-cell below the floor"):
        check_min_cell_floor(6, "why")


def test_som_estimate_refuses_min_cell_1(tmp_path):
    panel = tmp_path / "p.csv"
    pl.DataFrame({"id": [1, 1, 2, 2], "year": [1, 2, 1, 2], "y": [0.0, 1.0, 0.0, 0.5], "g": [2, 2, 0, 0]}).write_csv(panel)
    result = runner.invoke(app, ["estimate", str(panel), "--id", "id", "--time", "year", "--outcome", "y",
                                 "--group", "g", "--min-cell", "1"])
    assert result.exit_code == 2 and "below the agency's small-cell floor of 5" in result.stderr, result.output


# --------------------------------------------------------------------------- costs are negative

def _costs(*lines: dict) -> dict:
    return {**copy.deepcopy(SEED), "costs": list(lines)}


def test_a_positive_cost_is_an_error_naming_the_convention():
    with pytest.raises(ParameterError, match=r"costs\[0\]\.amount: 95000 is positive, but costs are negative cash flows "
                                             r".*savings positive, costs negative.*write -95000"):
        parse_parameter_set(_costs({"course_year": 1, "payer": "kommune", "amount": 95000}))
    with pytest.raises(ParameterError, match=r"costs\[1\]\.amount: 1 is positive"):
        parse_parameter_set(_costs({"course_year": 1, "payer": "kommune", "amount": -95000},
                                   {"course_year": 2, "payer": "stat", "amount": 1}))
    with pytest.raises(ParameterError, match=r"costs\[0\]\.range: the high end 5000 is positive"):
        parse_parameter_set(_costs({"course_year": 1, "payer": "kommune", "amount": -95000, "range": [-120000, 5000]}))


def test_negative_and_zero_costs_and_positive_avoided_costs_are_accepted():
    params = parse_parameter_set({**_costs({"course_year": 1, "payer": "kommune", "amount": -95000,
                                            "range": [-120000, -80000]},
                                           {"course_year": 2, "payer": "stat", "amount": 0}),
                                  "avoided_costs": [{"course_year": 2, "payer": "kommune", "amount": 4000}]})
    assert [c.amount for c in params.costs] == [-95000.0, 0.0] and params.avoided_costs[0].amount == 4000.0


def test_a_positive_cost_in_a_spec_seed_stops_the_evaluation(tmp_path):
    seed = SEED_FILE.read_text(encoding="utf-8").replace("amount: -95000", "amount: 95000")
    assert "amount: 95000" in seed
    path = place_spec(tmp_path, spec_text(), seed_text=seed)
    result = runner.invoke(app, ["evaluate", str(path), "--workdir", str(tmp_path / "w"), "--panel", str(tmp_path / "x")])
    assert result.exit_code == 2 and "costs[0].amount: 95000 is positive" in result.stderr, result.output


# --------------------------------------------------------------------------- a refused delivery: one line

def test_evaluate_on_a_refused_delivery_prints_one_line_without_a_stack_trace(tmp_path):
    from som_models.simulate import simulate, write_delivery

    folder = write_delivery(simulate("homelessness", 300, 4), tmp_path / "delivery", truth_panel=False)
    shelter = folder / "shelter.parquet"
    df = pl.read_parquet(shelter)
    pnr = df["PNR"][1]
    df.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("16098A3877")).otherwise(pl.col("PNR"))
                    .alias("PNR")).write_parquet(shelter)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"] = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in manifest["files"]
                          if (folder / f).is_file()}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code = "import sys; from pipeline.cli import main; sys.argv[0] = 'som'; main()"
    out = subprocess.run([sys.executable, "-c", code, "evaluate", str(DEMO_SPEC), "--workdir", str(tmp_path / "w"),
                          "--delivery", str(folder)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: the evaluation run stopped, nothing was proposed — registers: shelter.parquet: "
                               "column PNR: rule pnr-format: 1 value(s)")
    assert lines[0].endswith("(rows [1])")
    for noise in ("Traceback", "Stack Trace", "dagster - ERROR", "DeliveryError", "RefusedDelivery"):
        assert noise not in out.stderr and noise not in out.stdout
    assert "16098A3877" not in out.stderr and pnr not in out.stderr


# --------------------------------------------------------------------------- concurrent first starts

def _open_fresh(workdir: str, barrier, queue) -> None:
    from pipeline.store import ParameterStore, database_url
    from pipeline.workdir import prepare_workdir

    barrier.wait()
    try:
        home = prepare_workdir(workdir)
        with ParameterStore(database_url(home)) as store:
            run = store.record_run(evaluation_id="ev", intervention=HF, data_vintage="v", data_hash="h" * 64,
                                   code_version="c", spec={}, tested_version=None)
        queue.put(("ok", run.id))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def test_concurrent_first_starts_on_a_fresh_workdir_all_succeed_with_their_own_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    ctx = mp.get_context("fork")
    processes = 5
    for trial in range(4):
        workdir = tmp_path / f"w{trial}"
        barrier, queue = ctx.Barrier(processes), ctx.Queue()
        workers = [ctx.Process(target=_open_fresh, args=(str(workdir), barrier, queue)) for _ in range(processes)]
        for w in workers:
            w.start()
        results = [queue.get(timeout=120) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        assert [r for r in results if r[0] != "ok"] == [], results
        ids = [r[1] for r in results]
        assert len(set(ids)) == processes  # each start recorded (and reports) its own run
        with ParameterStore(database_url(workdir)) as store:
            assert sorted(r.id for r in store.runs(HF)) == sorted(ids)
        assert not list(workdir.glob(".write-test*"))

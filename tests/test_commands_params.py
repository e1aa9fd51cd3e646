"""`som params list|show|history|diff|approve|reject` on SQLite and PostgreSQL stores."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import ParameterStore
from pipeline.store.testing import SKIP_REASON, postgres_admin_url, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
SEED = yaml.safe_load((ROOT / "assets" / "parameters" / "housing_first_demo.yaml").read_text(encoding="utf-8"))
HF = "housing_first_demo"
runner = CliRunner()


def _variant(rate: float) -> dict:
    doc = copy.deepcopy(SEED)
    doc["success_rate"] = {**doc["success_rate"], "value": rate}
    return doc


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    """Environment for the CLI and a store seeded with v1 and two competing proposals (v2: 0.15, v3: 0.25)."""
    work = tmp_path / "work"
    if request.param == "sqlite":
        url, ctx = f"sqlite:///{work / 'som.db'}", None
        environment = {"SOM_DATABASE_URL": "", "SOM_HOME": str(work), "SOM_USER": "tester"}
    else:
        admin = postgres_admin_url()
        if admin is None:
            pytest.skip(SKIP_REASON)
        ctx = temporary_postgres_database(admin)
        url = ctx.__enter__()
        environment = {"SOM_DATABASE_URL": url, "SOM_HOME": str(work), "SOM_USER": "tester"}
    with ParameterStore(url) as store:
        store.ensure_parameter_set(HF, SEED, title=SEED["title"], source="housing_first_demo.yaml")
        for rate in (0.15, 0.25):
            run = store.record_run(evaluation_id="ev", intervention=HF, data_vintage="2023-06", data_hash="h" * 64,
                                   code_version="c", spec={}, tested_version=1)
            store.propose_version(intervention=HF, parent_version=1, content=_variant(rate), reason=f"rate {rate}",
                                  run_id=run.id, data_vintage="2023-06", data_hash="h" * 64, code_version="c",
                                  evidence={}, estimates=[], verdicts=[])
    yield environment
    if ctx is not None:
        ctx.__exit__(None, None, None)


def cli(env, *args):
    return runner.invoke(app, ["params", *args], env=env)


def as_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_show_history(env):
    (row,) = as_json(cli(env, "list", "--json", "-"))["interventions"]
    assert (row["intervention"], row["approved_version"], row["latest_version"], row["proposed"]) == (HF, 1, 3, 2)
    shown = as_json(cli(env, "show", HF, "--json", "-"))
    assert shown["version"] == 1 and shown["status"] == "approved" and shown["content"] == SEED
    assert as_json(cli(env, "show", HF, "--version", "3", "--json", "-"))["content"]["success_rate"]["value"] == 0.25
    history = as_json(cli(env, "history", HF, "--json", "-"))["versions"]
    assert [(v["version"], v["status"], v["parent_version"]) for v in history] == [
        (1, "approved", None), (2, "proposed", 1), (3, "proposed", 1)]
    text = cli(env, "history", HF)
    assert text.exit_code == 0 and "proposed" in text.stdout and "rate 0.15" in text.stdout
    text = cli(env, "show", HF, "-v", "2")
    assert text.exit_code == 0 and "version 2 — proposed" in text.stdout and "value: 0.15" in text.stdout


def test_diff(env):
    doc = as_json(cli(env, "diff", HF, "1", "3", "--json", "-"))
    assert doc["changes"] == [{"path": "success_rate.value", "change": "changed", "from": 0.2, "to": 0.25}]
    assert doc["projection"]["to"]["npv"]["total"] > doc["projection"]["from"]["npv"]["total"]
    parent = as_json(cli(env, "diff", HF, "2", "--json", "-"))  # one version: against its parent
    assert (parent["from_version"], parent["to_version"]) == (1, 2)
    text = cli(env, "diff", HF, "1", "2")
    assert text.exit_code == 0 and "success_rate.value" in text.stdout and "Projection" in text.stdout


def test_approve_shows_the_new_projection_and_the_loser_gets_a_conflict(env):
    approved = as_json(cli(env, "approve", HF, "3", "--reason", "follow-up 2023", "--json", "-"))
    assert approved["status"] == "approved" and approved["decided_by"] == "tester" and approved["superseded_version"] == 1
    before, after = approved["projection"]["previous"]["npv"], approved["projection"]["approved"]["npv"]
    assert after["total"] > before["total"]  # a higher success rate saves more
    conflict = cli(env, "approve", HF, "2", "--reason", "me too", "--by", "other")
    assert conflict.exit_code == 2 and conflict.stderr.startswith("error: conflict:")
    assert "approved version is now 3" in conflict.stderr and len(conflict.stderr.strip().splitlines()) == 1
    rejected = as_json(cli(env, "reject", HF, "2", "--reason", "superseded by v3", "--by", "other", "--json", "-"))
    assert rejected["status"] == "rejected" and rejected["decided_by"] == "other"
    history = as_json(cli(env, "history", HF, "--json", "-"))["versions"]
    assert [v["status"] for v in history] == ["superseded", "rejected", "approved"]
    text = cli(env, "history", HF)
    assert "superseded" in text.stdout


def test_expect_parent_guards_an_approval(env):
    result = cli(env, "approve", HF, "2", "--reason", "x", "--expect-parent", "2")
    assert result.exit_code == 2 and "not the expected 2" in result.stderr
    text = cli(env, "approve", HF, "2", "--reason", "x", "--expect-parent", "1")
    assert text.exit_code == 0 and "Approved version 2" in text.stdout and "Projection" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["show", "nope"], "no approved version of parameter set 'nope'"),
    (["history", "nope"], "no parameter set for intervention 'nope'"),
    (["show", HF, "--version", "9"], "no version 9"),
    (["show", HF, "--version", "0"], "--version must be a positive integer"),
    (["diff", HF, "1"], "version 1 of 'housing_first_demo' has no parent"),
    (["diff", HF, "1", "8"], "no version 8"),
    (["approve", HF, "1", "--reason", "x"], "is 'approved', not 'proposed'"),
    (["approve", HF, "2", "--reason", "  "], "--reason must say why"),
    (["reject", HF, "0", "--reason", "x"], "VERSION must be a positive integer"),
    (["approve", "nope", "2", "--reason", "x"], "no approved version of parameter set 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(env, args, message):
    result = cli(env, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_store_and_a_bad_database_url(tmp_path):
    result = runner.invoke(app, ["params", "list", "--workdir", str(tmp_path / "empty")], env={"SOM_DATABASE_URL": ""})
    assert result.exit_code == 2 and "no parameter store at" in result.stderr
    assert not (tmp_path / "empty" / "som.db").exists()  # reading never creates a store
    result = runner.invoke(app, ["params", "list"], env={"SOM_DATABASE_URL": "not a url"})
    assert result.exit_code == 2 and "not a valid database URL" in result.stderr
    result = runner.invoke(app, ["params", "list"],
                           env={"SOM_DATABASE_URL": "postgresql+psycopg2://u:secret@127.0.0.1:1/som?connect_timeout=2"})
    assert result.exit_code == 2 and "cannot open the parameter store" in result.stderr
    assert "secret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

"""`som demo` runs on an ephemeral Dagster instance unless --keep-history, which records the run in the workdir's
instance even when SOM_RUN_HISTORY=off (the tests' setting)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.runner import workdir_instance


def test_keep_history_records_the_run_in_the_workdir_instance(tmp_path, monkeypatch):
    monkeypatch.setenv("SOM_RUN_HISTORY", "off")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # restored afterwards (workdir_instance sets it)
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    monkeypatch.delenv("SOM_DATABASE_URL", raising=False)
    kept, plain = tmp_path / "kept", tmp_path / "plain"
    res = CliRunner().invoke(app, ["demo", "--persons", "400", "--workdir", str(kept), "--keep-history", "--json", "-"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)["dagster_run_id"]
    assert run_id and workdir_instance(kept).get_run_by_id(run_id) is not None
    res = CliRunner().invoke(app, ["demo", "--persons", "400", "--workdir", str(plain), "--json", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["dagster_run_id"] is None
    assert workdir_instance(plain).get_runs(limit=1) == []
    assert "--keep-history keeps it" in res.stderr

"""The executor is chosen by configuration for every job and backfill; the pseudonym key comes from a secret."""

import dagster as dg
import pytest

from pipeline.defs.executor import ExecutorConfigError, executor_from_env
from pipeline.registers.pseudonym import PseudonymKeyError, load_key, pseudonyms


def test_in_process_by_default_for_the_job_and_for_backfills(tmp_path, monkeypatch):
    from pipeline.definitions import build_definitions

    for var in ("SOM_EXECUTOR", "SOM_MAX_CONCURRENT", "SOM_EXECUTOR_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    defs = build_definitions(str(tmp_path))
    assert defs.resolve_job_def("evaluation_job").executor_def.name == "in_process"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"  # what backfills run


def test_multiprocess_by_environment(tmp_path, monkeypatch):
    from pipeline.definitions import build_definitions

    monkeypatch.setenv("SOM_EXECUTOR", "multiprocess")
    monkeypatch.setenv("SOM_MAX_CONCURRENT", "3")
    defs = build_definitions(str(tmp_path))
    for job in (defs.resolve_job_def("evaluation_job"), defs.resolve_implicit_global_asset_job_def()):
        assert job.executor_def.name == "multiprocess"
        assert job.executor_def.config_schema.resolve_config({}).value["config"]["max_concurrent"] == 3


def test_executor_settings_are_checked():
    assert executor_from_env({"SOM_EXECUTOR": "dagster:in_process_executor"}).name == "in_process"
    configured = executor_from_env({"SOM_EXECUTOR": "multiprocess", "SOM_EXECUTOR_CONFIG": '{"max_concurrent": 2}'})
    assert configured.name == "multiprocess"
    assert configured.config_schema.resolve_config({}).value["config"]["max_concurrent"] == 2
    with pytest.raises(ExecutorConfigError, match="SOM_MAX_CONCURRENT='zero'"):
        executor_from_env({"SOM_EXECUTOR": "multiprocess", "SOM_MAX_CONCURRENT": "zero"})
    with pytest.raises(ExecutorConfigError, match="use in_process, multiprocess or package.module:attribute"):
        executor_from_env({"SOM_EXECUTOR": "threads"})
    with pytest.raises(ExecutorConfigError, match="cannot import the executor"):
        executor_from_env({"SOM_EXECUTOR": "no_such_package:k8s_job_executor"})
    with pytest.raises(ExecutorConfigError, match="not a Dagster executor"):
        executor_from_env({"SOM_EXECUTOR": "os:path"})
    with pytest.raises(ExecutorConfigError, match="SOM_EXECUTOR_CONFIG is not valid JSON"):
        executor_from_env({"SOM_EXECUTOR_CONFIG": "{max"})


@pytest.fixture
def no_key_env(monkeypatch, tmp_path):
    for var in ("SOM_PSEUDONYM_KEY", "SOM_PSEUDONYM_KEY_FILE", "SOM_REQUIRE_PSEUDONYM_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return monkeypatch


def test_key_from_a_secret_file_is_the_same_in_every_workdir(tmp_path, no_key_env):
    secret = tmp_path / "som_pseudonym_key"
    secret.write_text("0f" * 32 + "\n")
    no_key_env.setenv("SOM_PSEUDONYM_KEY_FILE", str(secret))
    no_key_env.setenv("SOM_REQUIRE_PSEUDONYM_KEY", "1")
    a, b = load_key(tmp_path / "pod_a"), load_key(tmp_path / "pod_b")
    assert a == b == bytes.fromhex("0f" * 32)
    assert pseudonyms(["0101701234"], a) == pseudonyms(["0101701234"], b)
    assert not (tmp_path / "pod_a" / "secrets").exists()


def test_key_problems_are_clear_and_never_show_the_key(tmp_path, no_key_env):
    no_key_env.setenv("SOM_PSEUDONYM_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(PseudonymKeyError, match="cannot read the key file"):
        load_key(tmp_path)
    (tmp_path / "short").write_text("abcd")
    no_key_env.setenv("SOM_PSEUDONYM_KEY_FILE", str(tmp_path / "short"))
    with pytest.raises(PseudonymKeyError, match="key of 2 bytes; at least 16") as info:
        load_key(tmp_path)
    assert "abcd" not in str(info.value)
    no_key_env.delenv("SOM_PSEUDONYM_KEY_FILE")
    no_key_env.setenv("SOM_PSEUDONYM_KEY", "not hex")
    with pytest.raises(PseudonymKeyError, match="SOM_PSEUDONYM_KEY must hold the key as hexadecimal"):
        load_key(tmp_path)


def test_a_shared_deployment_requires_the_key(tmp_path, no_key_env):
    no_key_env.setenv("SOM_REQUIRE_PSEUDONYM_KEY", "1")
    with pytest.raises(PseudonymKeyError, match="SOM_PSEUDONYM_KEY_FILE"):
        load_key(tmp_path / "w")
    assert not (tmp_path / "w" / "secrets" / "pseudonym.key").exists()
    no_key_env.delenv("SOM_REQUIRE_PSEUDONYM_KEY")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_url: {env: DAGSTER_PG_URL}\n")
    with pytest.raises(PseudonymKeyError, match="PostgreSQL Dagster instance"):
        load_key(tmp_path / "w")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    minted = load_key(tmp_path / "w")  # one analyst, one machine: a per-workdir key is created once
    assert len(minted) == 32 and load_key(tmp_path / "w") == minted
    assert (tmp_path / "w" / "secrets" / "pseudonym.key").stat().st_mode & 0o777 == 0o600


def test_run_retention_deletes_only_finished_runs_older_than_the_limit(tmp_path, monkeypatch):
    import datetime as dt

    from pipeline.defs.retention import purge_runs, retention_days, run_retention_schedule

    @dg.asset
    def tiny() -> int:
        return 1

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        runs = [dg.materialize([tiny], instance=instance).run_id for _ in range(3)]
        assert purge_runs(instance, 0) == 0
        assert purge_runs(instance, 30) == 0  # all younger than 30 days
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
        assert purge_runs(instance, 30, now=later) == 3
        assert all(instance.get_run_by_id(r) is None for r in runs)
        monkeypatch.delenv("SOM_RUN_RETENTION_DAYS", raising=False)
        tick = dt.datetime(2026, 12, 1, 4, 30, tzinfo=dt.UTC)
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            assert isinstance(run_retention_schedule(context), dg.SkipReason)
        monkeypatch.setenv("SOM_RUN_RETENTION_DAYS", "90")
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            request = run_retention_schedule(context)
        assert request.run_config == {"ops": {"purge_old_runs": {"config": {"days": 90}}}}
    with pytest.raises(ValueError, match="SOM_RUN_RETENTION_DAYS='a week'"):
        retention_days({"SOM_RUN_RETENTION_DAYS": "a week"})

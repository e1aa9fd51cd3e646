"""The deploy kit is consistent: compose services, instance config, workspace, Dockerfile and documentation."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
INSTANCE_ENV = {"DAGSTER_PG_HOST": "postgres", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USERNAME": "som",
                "DAGSTER_PG_PASSWORD": "secret", "DAGSTER_PG_DB": "dagster", "SOM_MAX_CONCURRENT_RUNS": "2"}


def _referenced_variables() -> set[str]:
    """Every variable the kit reads or sets: ${VAR} in compose, environment keys, {env: VAR} in dagster.yaml."""
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (DEPLOY / "compose.yaml").read_text(encoding="utf-8")))
    for service in COMPOSE["services"].values():
        names |= set(service.get("environment") or {})
    names |= set(re.findall(r"\{env: ([A-Z][A-Z0-9_]*)\}", (DEPLOY / "dagster.yaml").read_text(encoding="utf-8")))
    names |= {line.split("=", 1)[0] for line in (DEPLOY / "env.example").read_text().splitlines()
              if line and not line.startswith("#")}
    names |= set(re.findall(r"\b((?:SOM|DAGSTER|GX)_[A-Z0-9_]+)=", (DEPLOY / "Dockerfile").read_text()))
    return names


def test_compose_has_the_four_services_sharing_volumes_and_the_key_secret():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "codeserver", "webserver", "daemon"}
    code = services["codeserver"]
    assert code["secrets"] == ["som_pseudonym_key"] and "som_pseudonym_key" in COMPOSE["secrets"]
    env = code["environment"]
    assert env["SOM_REQUIRE_PSEUDONYM_KEY"] == "1"
    assert env["SOM_PSEUDONYM_KEY_FILE"] == "/run/secrets/som_pseudonym_key"
    assert "SOM_PSEUDONYM_KEY" not in env
    assert env["SOM_DATABASE_URL"].startswith("postgresql+psycopg2://") and env["SOM_DATABASE_URL"].endswith("/som_store")
    for name in ("codeserver", "webserver", "daemon"):
        assert "som-data:/var/lib/som" in services[name]["volumes"], name
        assert services[name]["environment"]["DAGSTER_HOME"] == "/opt/dagster/home"
        assert services[name]["environment"]["DAGSTER_PG_HOST"] == "postgres"
        assert "secrets" not in services[name] or name == "codeserver"
    assert {"postgres-data", "som-data"} <= set(COMPOSE["volumes"])
    port = code["command"][code["command"].index("-p") + 1]
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    grpc = workspace["load_from"][0]["grpc_server"]
    assert (grpc["host"], str(grpc["port"]), grpc["location_name"]) == ("codeserver", port, "som")
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/workspace.yaml" in services[name]["command"]


def test_every_variable_the_kit_uses_is_documented():
    undocumented = sorted(v for v in _referenced_variables() if f"`{v}`" not in DOCS)
    assert undocumented == []


def _load_instance_config():
    """deploy/dagster.yaml checked against Dagster's instance schema, its storage and run queue sections
    against the PostgreSQL storage's and the queued run coordinator's schemas (env variables resolved)."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import DagsterPostgresStorage

    config, _ = dagster_instance_config(str(DEPLOY), "dagster.yaml")
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    queue = process_config(QueuedRunCoordinator.config_type(), config["run_queue"])
    return config, storage, queue


def test_instance_config_loads_with_dagsters_schema(monkeypatch):
    for key, value in INSTANCE_ENV.items():
        monkeypatch.setenv(key, value)
    config, storage, queue = _load_instance_config()
    assert storage.success and queue.success, (storage.errors, queue.errors)
    assert storage.value["postgres_db"]["password"] == "secret" and storage.value["postgres_db"]["port"] == 5432
    assert queue.value["max_concurrent_runs"] == 2
    assert config["telemetry"]["enabled"] is False
    assert queue.value["tag_concurrency_limits"] == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
        # one run per evaluation: its vintages count each other's looks (docs/operations.md, Run queue)
        {"key": "dagster/partition/evaluation", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert config["retention"]["sensor"]["purge_after_days"]["skipped"] == 7


def test_instance_config_names_its_missing_variables(monkeypatch):
    for key, value in INSTANCE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    _, storage, _ = _load_instance_config()
    assert not storage.success and "DAGSTER_PG_PASSWORD" in storage.errors[0].message


def test_dockerfile_installs_from_the_lock_file_and_copies_what_exists():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev --no-install-project" in text and "uv sync --frozen --no-dev\n" in text
    assert "uv==0.13.9" in text and "FROM python:3.11" in text
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert (DEPLOY / "postgres" / "init.sql").is_file()


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _compose_available(), reason="docker with the compose plugin is not available")
def test_docker_compose_accepts_the_file(tmp_path):
    key = tmp_path / "pseudonym.key"
    key.write_text("ab" * 32)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "SOM_PG_PASSWORD": "secret", "SOM_PSEUDONYM_KEY_PATH": str(key),
           "HOME": str(tmp_path)}
    done = subprocess.run(["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr

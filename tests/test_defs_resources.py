"""Resources are resolved when the definitions are built: dg.EnvVar for set variables, concrete defaults otherwise."""

import dagster as dg

from pipeline.definitions import build_resources


def test_env_vars_become_dagster_env_vars_and_defaults_are_concrete(tmp_path, monkeypatch):
    for name in ("SOM_HOME", "SOM_DATABASE_URL", "SOM_LANDING", "SOM_EVALUATIONS_DIR", "SOM_DELIVERY", "SOM_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    res = build_resources(str(tmp_path))
    som = res["som"]
    assert som.workdir == str(tmp_path.resolve())
    assert som.database_url == f"sqlite:///{(tmp_path.resolve() / 'som.db').as_posix()}"
    assert som.landing == str(tmp_path.resolve() / "landing") and som.evaluations_dir.endswith("assets/evaluations")
    assert res["io_manager"].base_dir == str(tmp_path.resolve() / "storage")

    monkeypatch.setenv("SOM_DATABASE_URL", "postgresql://u:secret@db/som")
    monkeypatch.setenv("SOM_LANDING", str(tmp_path / "in"))
    monkeypatch.setenv("SOM_STORAGE_URL", "memory://som")
    res = build_resources(str(tmp_path))
    som = res["som"]
    assert isinstance(som.database_url, dg.EnvVar) and som.database_url.env_var_name == "SOM_DATABASE_URL"
    assert isinstance(som.landing, dg.EnvVar) and isinstance(res["io_manager"].base_dir, dg.EnvVar)
    # explicit settings win over the environment
    assert build_resources(str(tmp_path), landing=str(tmp_path / "x"))["som"].landing == str(tmp_path / "x")


def test_resource_methods_do_not_read_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SOM_LANDING", raising=False)
    monkeypatch.delenv("SOM_DELIVERY", raising=False)
    som = build_resources(str(tmp_path))["som"]
    monkeypatch.setenv("SOM_LANDING", "/elsewhere")
    monkeypatch.setenv("SOM_DELIVERY", "/elsewhere/d")
    assert som.landing_path() == tmp_path.resolve() / "landing"
    assert som.workdir_path() == tmp_path.resolve()

"""Shared fixtures: small synthetic deliveries in temporary folders (never the working directory)."""

import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# In-process evaluations run on an ephemeral Dagster instance unless a test asks for the workdir's history
# (pipeline.runner.keeps_history): the SQLite event log's disk syncs were half of each small run.
os.environ.setdefault("SOM_RUN_HISTORY", "off")

DEMO_PERSONS = 8000
DEMO_SEED = 2


@pytest.fixture(scope="session")
def demo_delivery(tmp_path_factory):
    """The demo world (homelessness, 8000 persons, seed 2) written as Parquet, with its truth."""
    from som_models.simulate import simulate, write_delivery

    folder = tmp_path_factory.mktemp("delivery") / "demo"
    sim = simulate("homelessness", DEMO_PERSONS, DEMO_SEED)
    write_delivery(sim, folder)
    return folder, sim


@pytest.fixture(scope="session")
def demo_run(demo_delivery, tmp_path_factory):
    """The whole Dagster graph materialised once on the demo delivery in a temporary workdir."""
    import dagster as dg

    from pipeline.runner import run_evaluation

    mp = pytest.MonkeyPatch()
    mp.delenv("SOM_DATABASE_URL", raising=False)
    mp.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    folder, sim = demo_delivery
    workdir = tmp_path_factory.mktemp("som")
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_evaluation(workdir, delivery=folder, instance=instance)
    yield workdir, folder, sim, outcome, instance
    mp.undo()

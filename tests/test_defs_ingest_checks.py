"""Ingestion in Dagster: the ``registers`` multi-asset runs ``build_checked`` and records every expectation of
every register suite (and of the panel/treatments suites) as an asset check, also when a delivery is refused."""

import json

import dagster as dg
import polars as pl

from pipeline.defs import assets
from pipeline.defs.io_managers import PolarsParquetIOManager
from pipeline.defs.partitions import VINTAGES
from pipeline.defs.resources import SomSettings
from pipeline.quality.checks import REGISTER_SUITE_DIR, ingest_check_specs, list_suites, load_suite
from pipeline.registers.config import REGISTERS
from tests.test_ingest import _delivery

DAGSTER_NAME = r"^[A-Za-z0-9_]+$"


def test_every_register_expectation_is_a_check_of_the_registers_asset():
    specs = {(s.asset_key.to_user_string(), s.name): s for s in assets.registers.check_specs}
    assert len(specs) == len(ingest_check_specs())
    register_suites = list_suites(REGISTER_SUITE_DIR)
    assert {s.path.stem for s in register_suites} == set(REGISTERS)
    for suite in register_suites:
        asset = "treatments" if suite.path.stem == "indsats" else "panel"
        for e in suite.expectations:
            spec = specs[(asset, f"{suite.path.stem}__{e.check_name}")]
            assert spec.blocking == e.blocking and spec.metadata["register"] == suite.path.stem
            assert spec.description.startswith(f"register {suite.path.stem}: ")
    for name in ("panel", "treatments"):  # their suites run during ingestion, under their existing check names
        assert all((name, e.check_name) in specs for e in load_suite(name).expectations)
    n = (sum(len(s.expectations) for s in register_suites) + len(load_suite("panel").expectations)
         + len(load_suite("treatments").expectations))
    assert len(specs) == n
    assert all(pl.Series([k[1]]).str.contains(DAGSTER_NAME).item() for k in specs)
    assert ("panel", "bef__not_null__PNR") in specs and ("treatments", "indsats__not_null__PNR") in specs


def _run(tmp_path, folder, monkeypatch):
    monkeypatch.setenv("SOM_PSEUDONYM_KEY", "ab" * 32)
    evaluation = "housing_first_demo_eval"

    @dg.asset(name="delivery", partitions_def=assets.PARTITIONS)
    def delivery() -> dict:
        return {"folder": str(folder)}

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(VINTAGES.name, ["2021-06"])
    instance.add_dynamic_partitions("evaluation", [evaluation])
    return dg.materialize(
        [delivery, assets.registers], instance=instance, raise_on_error=False,
        partition_key=dg.MultiPartitionKey({"evaluation": evaluation, "vintage": "2021-06"}),
        resources={"som": SomSettings(workdir=str(tmp_path / "som")),
                   "io_manager": PolarsParquetIOManager(base_dir=str(tmp_path / "storage"))},
    )


def test_good_delivery_records_the_delivered_registers_checks_and_suppressed_metadata(tmp_path, monkeypatch):
    result = _run(tmp_path, _delivery(tmp_path), monkeypatch)
    assert result.success
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert all(e.passed for e in evaluations.values())
    delivered = {"bef", "shelter", "dream", "indsats"}
    for register in REGISTERS:
        names = {k for k in evaluations if k[1].startswith(f"{register}__")}
        assert bool(names) == (register in delivered), register  # not delivered: no result (Dagster: skipped)
    bef = evaluations[("panel", "bef__in_set__KOEN")]
    assert bef.metadata["engine"].value in ("gx", "polars") and bef.metadata["element_count"].value == 3
    assert ("panel", "in_set__sex") in evaluations and ("treatments", "not_null__person_id") in evaluations
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    panel = mats["panel"]
    assert panel["dagster/row_count"].value == 3
    assert "person_id" in [c.name for c in panel["dagster/column_schema"].value.columns]
    assert panel["persons"].value == "suppressed (<5)"  # 2 persons
    rows = [r.data for r in panel["persons_by_year"].value.records]
    assert rows and all(r["persons"] == "suppressed (<5)" and r["suppressed"] for r in rows)
    assert panel["path"].value.endswith(".parquet")
    assert not any("0101901234" in json.dumps({k: str(v.value) for k, v in m.items()}) for m in mats.values())


def test_refused_delivery_records_the_register_and_rule_before_failing(tmp_path, monkeypatch):
    folder = _delivery(tmp_path)
    bef = pl.read_parquet(folder / "bef201912.parquet").with_columns(pl.lit(3).alias("KOEN"))
    bef.write_parquet(folder / "bef201912.parquet")
    result = _run(tmp_path, folder, monkeypatch)
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    refused = evaluations["bef__in_set__KOEN"]
    assert not refused.passed and refused.severity == dg.AssetCheckSeverity.ERROR
    assert "register bef" in refused.description and "KOEN" in refused.description
    assert evaluations["bef__not_null__PNR"].passed
    assert not any(name.startswith(("indsats__", "shelter__")) for name in evaluations)  # never evaluated
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "bef201912.parquet" in str(failure.step_failure_data.error.cause)
    assert {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()} == {"delivery"}

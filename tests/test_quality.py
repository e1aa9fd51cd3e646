"""Tests for the GX suites, the GX runner, the Dagster asset checks and the Parquet IO manager."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import polars as pl
import pytest

from pipeline.defs.io_managers import PolarsParquetIOManager
from pipeline.quality import (
    SUITE_DIR,
    describe_failures,
    list_suites,
    load_suite,
    validate_frame,
)
from pipeline.quality.checks import build_gx_asset_checks, validate_suite_assets

BENEFITS = [
    "dagpenge",
    "kontanthjaelp",
    "ledighedsydelse",
    "efterloen",
    "su",
    "foertidspension",
    "barselsdagpenge",
    "sygedagpenge",
]
WEEK_COLS = ["self_support_weeks", *[f"{b}_weeks" for b in BENEFITS]]
DAGSTER_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def pid(i: int) -> str:
    return hashlib.sha256(f"person-{i}".encode()).hexdigest()[:16]


def golden_panel() -> pl.DataFrame:
    """5 persons × 2 years; person i occupies rows 2i and 2i+1."""
    rows = []
    for i in range(5):
        for year in (2018, 2019):
            birth = 1970 + i
            row = {
                "person_id": pid(i),
                "year": year,
                "sex": 1 + i % 2,
                "birth_year": birth,
                "age": year - birth,
                "municipality": [101, 147, 461, 751, 860][i],
                "shelter_nights": float(10 * i),
            }
            row.update({c: float((i + j) % 53) for j, c in enumerate(WEEK_COLS)})
            rows.append(row)
    schema = {
        "person_id": pl.Utf8,
        "year": pl.Int64,
        "sex": pl.Int64,
        "birth_year": pl.Int64,
        "age": pl.Int64,
        "municipality": pl.Int64,
        "shelter_nights": pl.Float64,
        **{c: pl.Float64 for c in WEEK_COLS},
    }
    return pl.DataFrame(rows, schema=schema)


def golden_treatments() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "person_id": [pid(i) for i in range(5)],
            "intervention": ["housing_first"] * 5,
            "start_year": [2018, 2018, 2019, 2019, 2018],
            "end_year": [2019, None, 2019, None, 2020],
            "arm": ["T", "C", None, "T", "C"],
        },
        schema={
            "person_id": pl.Utf8,
            "intervention": pl.Utf8,
            "start_year": pl.Int64,
            "end_year": pl.Int64,
            "arm": pl.Utf8,
        },
    )


def golden_effects() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "outcome": ["shelter_nights"] * 4,
            "estimand": ["att_gt", "event", "group", "overall"],
            "group": [2018, None, 2018, None],
            "time": [2019, None, None, None],
            "event_time": [None, 1, None, None],
            "estimate": [-3.0, -2.5, -2.0, -2.2],
            "se": [1.0, 0.8, 0.0, 0.5],
            "ci_low": [-5.0, -4.1, -2.0, -3.2],
            "ci_high": [-1.0, -0.9, -2.0, -1.2],
            "n_treated": [3, 3, 3, 3],
            "n_control": [2, 2, 2, 0],
        },
        schema={
            "outcome": pl.Utf8,
            "estimand": pl.Utf8,
            "group": pl.Int64,
            "time": pl.Int64,
            "event_time": pl.Int64,
            "estimate": pl.Float64,
            "se": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "n_treated": pl.Int64,
            "n_control": pl.Int64,
        },
    )


GOLDEN = {"panel": golden_panel, "treatments": golden_treatments, "realised_effects": golden_effects}


def set_cell(df: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    values = df[column].to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df.schema[column]))


def failed_names(report) -> list[str]:
    return [o.check_name for o in report.failures()]


# ---------------------------------------------------------------------------- suites


def test_suite_files_load_with_unique_dagster_safe_check_names():
    suites = {s.name: s for s in list_suites()}
    assert set(suites) == {"panel", "treatments", "realised_effects"}
    for name, suite in suites.items():
        assert suite.asset == name
        names = [e.check_name for e in suite.expectations]
        assert len(names) == len(set(names)), name
        assert all(DAGSTER_NAME.match(n) for n in names), names
        assert all(e.description for e in suite.expectations)
        raw = json.loads((SUITE_DIR / f"{name}.json").read_text())
        assert [e["type"] for e in raw["expectations"]] == [e.type for e in suite.expectations]
    # check names are deterministic
    assert [e.check_name for e in load_suite("panel").expectations] == [
        e.check_name for e in suites["panel"].expectations
    ]
    panel = {e.check_name: e for e in suites["panel"].expectations}
    for required in ("not_null__person_id", "between__shelter_nights", "unique__person_id__year", "columns"):
        assert panel[required].blocking
    assert not panel["ge__year__birth_year"].blocking
    assert all(e.blocking for e in suites["treatments"].expectations)


def test_duplicate_expectations_get_suffixes_and_are_matched_in_order(tmp_path):
    suite_file = tmp_path / "dup.json"
    exps = [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0}, "meta": {"blocking": True}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "max_value": 2}, "meta": {"blocking": False}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"blocking": True}},
    ]
    suite_file.write_text(json.dumps({"name": "dup", "expectations": exps, "meta": {"dagster_asset": "x"}}))
    suite = load_suite(suite_file)
    assert [e.check_name for e in suite.expectations] == ["between__a", "between__a_2", "not_null__a"]
    report = validate_frame(pl.DataFrame({"a": [1, 5, -1, None]}), suite)
    assert [o.check_name for o in report.outcomes] == ["between__a", "between__a_2", "not_null__a"]
    by = {o.check_name: o for o in report.outcomes}
    assert (by["between__a"].unexpected_count, by["between__a"].sample_rows) == (1, (2,))
    assert (by["between__a_2"].unexpected_count, by["between__a_2"].sample_rows) == (1, (1,))
    assert (by["not_null__a"].unexpected_count, by["not_null__a"].sample_rows) == (1, (3,))
    assert [o.check_name for o in report.blocking_failures()] == ["between__a", "not_null__a"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"name": "s", "expectations": []}), "dagster_asset"),
        (json.dumps({"name": "s", "meta": {"dagster_asset": "a"}}), "expectations"),
        (
            json.dumps(
                {
                    "name": "s",
                    "meta": {"dagster_asset": "a"},
                    "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "meta": {}}],
                }
            ),
            "blocking",
        ),
        (
            json.dumps(
                {"name": "s", "meta": {"dagster_asset": "a"}, "expectations": [{"kwargs": {}, "meta": {"blocking": True}}]}
            ),
            "type",
        ),
    ],
)
def test_bad_suite_file_raises_value_error_naming_the_file(tmp_path, content, fragment):
    bad = tmp_path / "broken_suite.json"
    bad.write_text(content)
    with pytest.raises(ValueError, match=fragment) as exc:
        load_suite(bad)
    assert "broken_suite.json" in str(exc.value)


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_frames_pass_in_suite_order(name, capfd):
    suite = load_suite(name)
    report = validate_frame(GOLDEN[name](), suite)
    assert report.success, describe_failures(report, name)
    assert (report.suite, report.asset) == (name, name)
    assert [o.check_name for o in report.outcomes] == [e.check_name for e in suite.expectations]
    assert [o.type for o in report.outcomes] == [e.type for e in suite.expectations]
    assert report.failures() == [] and report.blocking_failures() == []
    assert describe_failures(report, name) == ""
    records = report.to_records()
    assert len(records) == len(suite.expectations)
    json.dumps(records)  # JSON-safe
    assert "Calculating Metrics" not in capfd.readouterr().err  # GX progress bars are off


def test_pandas_frames_are_accepted():
    report = validate_frame(golden_treatments().to_pandas(), "treatments")
    assert report.success


def test_negative_shelter_nights_fails_range_check_at_row_3():
    report = validate_frame(set_cell(golden_panel(), 3, "shelter_nights", -1.0), "panel")
    assert not report.success
    assert failed_names(report) == ["between__shelter_nights"]
    (out,) = report.failures()
    assert out.blocking and out.unexpected_count == 1 and out.element_count == 10
    assert out.sample_rows == (3,)
    assert out.unexpected_percent == pytest.approx(10.0)
    message = describe_failures(report, "panel.parquet")
    assert len(message.splitlines()) == 1
    for part in ("panel.parquet", "between__shelter_nights", "'shelter_nights'", "1 of 10 rows", "rows: 3"):
        assert part in message


def test_null_person_id_fails_not_null_and_no_ids_leak():
    df = set_cell(golden_panel(), 2, "person_id", None)
    df = set_cell(df, 7, "person_id", "0101901234")  # looks like a raw CPR number
    report = validate_frame(df, "panel")
    assert sorted(failed_names(report)) == ["not_null__person_id", "regex__person_id"]
    by = {o.check_name: o for o in report.outcomes}
    assert (by["not_null__person_id"].unexpected_count, by["not_null__person_id"].sample_rows) == (1, (2,))
    assert (by["regex__person_id"].unexpected_count, by["regex__person_id"].sample_rows) == (1, (7,))
    dumped = json.dumps(report.to_records()) + describe_failures(report, "panel")
    for value in ["0101901234", *df["person_id"].drop_nulls().to_list()]:
        assert value not in dumped


def test_duplicate_person_year_fails_uniqueness():
    report = validate_frame(set_cell(golden_panel(), 5, "year", 2018), "panel")
    assert failed_names(report) == ["unique__person_id__year"]
    (out,) = report.failures()
    assert out.unexpected_count == 2 and out.sample_rows == (4, 5)


def test_year_before_birth_is_a_non_blocking_warning():
    report = validate_frame(set_cell(golden_panel(), 0, "birth_year", 2019), "panel")
    assert failed_names(report) == ["ge__year__birth_year"]
    assert report.blocking_failures() == []
    assert "(warning)" in describe_failures(report, "panel")


def test_ci_low_above_estimate_fails():
    report = validate_frame(set_cell(golden_effects(), 1, "ci_low", 0.0), "realised_effects")
    assert failed_names(report) == ["ge__estimate__ci_low"]
    (out,) = report.failures()
    assert out.blocking and out.unexpected_count == 1 and out.sample_rows == (1,)


def test_bad_estimates_fail_the_right_checks():
    df = set_cell(golden_effects(), 0, "se", -0.1)
    df = set_cell(df, 2, "estimand", "dynamic")
    df = set_cell(df, 3, "ci_high", -9.0)
    report = validate_frame(df, "realised_effects")
    assert failed_names(report) == ["in_set__estimand", "between__se", "ge__ci_high__estimate"]
    assert [o.sample_rows for o in report.failures()] == [(2,), (0,), (3,)]


def test_bad_treatments_fail_the_right_checks():
    df = golden_treatments()
    df = set_cell(df, 1, "person_id", pid(0))
    df = set_cell(df, 2, "arm", "X")
    df = set_cell(df, 4, "end_year", 2017)
    report = validate_frame(df, "treatments")
    assert failed_names(report) == ["unique__person_id", "in_set__arm", "ge__end_year__start_year"]
    by = {o.check_name: o for o in report.outcomes}
    assert (by["unique__person_id"].unexpected_count, by["unique__person_id"].sample_rows) == (2, (0, 1))
    assert by["in_set__arm"].sample_rows == (2,)
    assert by["ge__end_year__start_year"].sample_rows == (4,)


def test_missing_column_is_reported_not_raised():
    report = validate_frame(golden_treatments().drop("intervention"), "treatments")
    assert failed_names(report) == ["columns", "not_null__intervention"]
    by = {o.check_name: o for o in report.outcomes}
    assert by["not_null__intervention"].error and "intervention" in by["not_null__intervention"].error
    message = describe_failures(report, "treatments.csv")
    assert "missing columns: intervention" in message
    assert "could not be evaluated" in message


def test_importing_quality_modules_does_not_import_gx():
    code = (
        "import sys, pipeline.quality, pipeline.quality.checks, pipeline.defs.io_managers;"
        "assert 'great_expectations' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ---------------------------------------------------------------------------- Dagster


def _frame_assets(panel: pl.DataFrame):
    @dg.asset(name="panel")
    def panel_asset() -> pl.DataFrame:
        return panel

    @dg.asset(name="treatments")
    def treatments_asset() -> pl.DataFrame:
        return golden_treatments()

    @dg.asset(name="realised_effects")
    def effects_asset() -> pl.DataFrame:
        return golden_effects()

    @dg.asset(ins={"panel": dg.AssetIn("panel")})
    def cohorts(panel: pl.DataFrame) -> pl.DataFrame:
        return panel.select("person_id").unique()

    return [panel_asset, treatments_asset, effects_asset, cohorts]


def _materialize(tmp_path, panel):
    return dg.materialize(
        [*_frame_assets(panel), *build_gx_asset_checks()],
        resources={"io_manager": PolarsParquetIOManager(base_dir=str(tmp_path))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_dagster_checks_pass_on_golden_frames(tmp_path):
    result = _materialize(tmp_path, golden_panel())
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    expected = {(s.asset, e.check_name) for s in list_suites() for e in s.expectations}
    assert {(ev.asset_key.to_user_string(), ev.check_name) for ev in evaluations} == expected
    assert all(ev.passed for ev in evaluations)
    assert {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()} == {
        "panel",
        "treatments",
        "realised_effects",
        "cohorts",
    }
    ev = next(e for e in evaluations if e.check_name == "between__shelter_nights")
    assert ev.metadata["element_count"].value == 10
    assert ev.metadata["unexpected_count"].value == 0


def test_blocking_failure_stops_downstream_asset(tmp_path):
    result = _materialize(tmp_path, set_cell(golden_panel(), 3, "shelter_nights", -1.0))
    assert not result.success
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = [k for k, e in evaluations.items() if not e.passed]
    assert failed == [("panel", "between__shelter_nights")]
    bad = evaluations[("panel", "between__shelter_nights")]
    assert bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.metadata["sample_rows"].value == [3]
    assert bad.metadata["unexpected_count"].value == 1
    assert "shelter_nights" in (bad.description or "")
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "panel" in materialized and "treatments" in materialized
    assert "cohorts" not in materialized
    assert not (tmp_path / "cohorts.parquet").exists()


def test_non_blocking_failure_warns_but_does_not_stop(tmp_path):
    result = _materialize(tmp_path, set_cell(golden_panel(), 0, "birth_year", 2019))
    assert result.success
    (ev,) = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert ev.check_name == "ge__year__birth_year" and ev.severity == dg.AssetCheckSeverity.WARN
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "cohorts" in materialized


def test_check_definitions_have_unique_names_and_blocking_flags():
    checks = build_gx_asset_checks()
    assert sorted(c.node_def.name for c in checks) == ["gx_panel", "gx_realised_effects", "gx_treatments"]
    specs = {(s.asset_key.to_user_string(), s.name): s for c in checks for s in c.check_specs}
    suites = list_suites()
    assert len(specs) == sum(len(s.expectations) for s in suites)
    for suite in suites:
        for e in suite.expectations:
            assert specs[(suite.asset, e.check_name)].blocking == e.blocking


def test_validate_suite_assets(tmp_path):
    validate_suite_assets({"panel", "treatments", "realised_effects", "cohorts"})
    validate_suite_assets([dg.AssetKey("panel"), dg.AssetKey("treatments"), dg.AssetKey("realised_effects")])
    with pytest.raises(ValueError, match=r"realised_effects\.json.*'realised_effects'"):
        validate_suite_assets({"panel", "treatments"})
    (tmp_path / "orphan.json").write_text(
        json.dumps({"name": "orphan", "expectations": [], "meta": {"dagster_asset": "registers/nope"}})
    )
    with pytest.raises(ValueError, match=r"orphan\.json.*registers/nope"):
        validate_suite_assets({"panel"}, suite_dir=tmp_path)


# ---------------------------------------------------------------------------- IO manager


def test_io_manager_roundtrip_polars_dict_and_partitions(tmp_path):
    parts = dg.StaticPartitionsDefinition(["2024", "v1|a/b"])

    @dg.asset(key_prefix=["estimates"])
    def frame() -> pl.DataFrame:
        return golden_effects()

    @dg.asset
    def params() -> dict:
        return {"rate": 0.3, "items": [1, 2]}

    @dg.asset(partitions_def=parts)
    def vintage(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"key": [context.partition_key]})

    @dg.asset(ins={"frame": dg.AssetIn(key=["estimates", "frame"])})
    def combined(frame: pl.DataFrame, params: dict, vintage: dict) -> dict:
        return {
            "frame_equal": frame.equals(golden_effects()),
            "params": params,
            "vintages": {k: v["key"].to_list() for k, v in vintage.items()},
        }

    io = PolarsParquetIOManager(base_dir=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    for key in parts.get_partition_keys():
        assert dg.materialize([vintage], partition_key=key, resources={"io_manager": io}, instance=instance).success
    result = dg.materialize(
        [frame, params, combined, vintage.to_source_asset()], resources={"io_manager": io}, instance=instance
    )
    assert result.success
    assert (tmp_path / "estimates" / "frame.parquet").exists()
    assert json.loads((tmp_path / "params.json").read_text()) == {"rate": 0.3, "items": [1, 2]}
    assert (tmp_path / "vintage" / "2024.parquet").exists()
    assert (tmp_path / "vintage" / "v1%7Ca%2Fb.parquet").exists()
    assert pl.read_parquet(tmp_path / "estimates" / "frame.parquet").equals(golden_effects())
    out = result.output_for_node("combined")
    assert out == {
        "frame_equal": True,
        "params": {"rate": 0.3, "items": [1, 2]},
        "vintages": {"2024": ["2024"], "v1|a/b": ["v1|a/b"]},
    }
    assert not list(tmp_path.rglob("*.tmp"))


def test_io_manager_replaces_stale_file_of_other_kind_and_never_pickles(tmp_path):
    from pipeline.defs.io_managers import UnstorableValue

    io = PolarsParquetIOManager(base_dir=str(tmp_path))

    @dg.asset(name="thing")
    def as_dict() -> dict:
        return {"a": 1}

    @dg.asset(name="thing")
    def as_tuple_dict() -> dict:
        return {"a": (1, 2)}  # a tuple does not survive JSON: refused, never pickled

    @dg.asset(name="thing")
    def as_frame() -> pl.DataFrame:
        return pl.DataFrame({"a": [1]})

    @dg.asset
    def reader(thing: dict) -> dict:
        return thing

    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([as_dict], resources={"io_manager": io}, instance=instance).success
    assert (tmp_path / "thing.json").exists()
    with pytest.raises(UnstorableValue, match=r"asset thing: a dict value cannot be stored"):
        dg.materialize([as_tuple_dict], resources={"io_manager": io}, instance=instance)
    assert not list(tmp_path.glob("thing.pkl")) and json.loads((tmp_path / "thing.json").read_text()) == {"a": 1}
    assert dg.materialize([as_frame], resources={"io_manager": io}, instance=instance).success
    assert (tmp_path / "thing.parquet").exists() and not (tmp_path / "thing.json").exists()
    pdf = pd.read_parquet(tmp_path / "thing.parquet")
    assert pdf["a"].tolist() == [1]
    # a pickle an older version left is not loaded (unpickling runs code)
    (tmp_path / "thing.parquet").unlink()
    (tmp_path / "thing.pkl").write_bytes(b"\x80\x05N.")
    with pytest.raises(UnstorableValue, match=r"thing\.pkl: a pickled value left by an older version is not loaded"):
        dg.materialize([as_dict.to_source_asset(), reader], resources={"io_manager": io}, instance=instance,
                       selection=[reader])


def test_io_manager_on_fsspec_memory_filesystem():
    import fsspec

    base = f"memory://som-{abs(hash(object()))}"
    io = PolarsParquetIOManager(base_dir=base)
    parts = dg.MultiPartitionsDefinition({"evaluation": dg.StaticPartitionsDefinition(["e1"]),
                                          "vintage": dg.StaticPartitionsDefinition(["2024-06"])})

    @dg.asset(partitions_def=parts)
    def panel() -> pl.DataFrame:
        return golden_panel()

    @dg.asset(partitions_def=parts)
    def summary(panel: pl.DataFrame) -> dict:
        return {"rows": panel.height}

    @dg.asset(partitions_def=parts)
    def lazy_rows(panel: pl.LazyFrame) -> int:
        return panel.select(pl.len()).collect().item()

    key = dg.MultiPartitionKey({"evaluation": "e1", "vintage": "2024-06"})
    result = dg.materialize([panel, summary, lazy_rows], partition_key=key, resources={"io_manager": io},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert result.output_for_node("summary") == {"rows": 10} and result.output_for_node("lazy_rows") == 10
    fs = fsspec.filesystem("memory")
    stored = sorted(p for p in fs.find(base.removeprefix("memory://")))
    assert any(p.endswith("/panel/e1%2F2024-06.parquet") for p in stored), stored
    assert any(p.endswith("/summary/e1%2F2024-06.json") for p in stored), stored
    with fs.open(next(p for p in stored if p.endswith(".parquet")), "rb") as fh:
        assert pl.read_parquet(fh).equals(golden_panel())
    paths = {m.asset_key.to_user_string(): m.materialization.metadata["path"].value
             for m in result.get_asset_materialization_events()}
    assert paths["panel"].startswith("memory://") and paths["panel"].endswith(".parquet")


def test_partitioned_asset_is_checked_per_partition(tmp_path):
    parts = dg.StaticPartitionsDefinition(["good", "bad"])

    @dg.asset(name="panel", partitions_def=parts)
    def panel_asset(context: dg.AssetExecutionContext) -> pl.DataFrame:
        df = golden_panel()
        return set_cell(df, 3, "shelter_nights", -1.0) if context.partition_key == "bad" else df

    checks = [c for c in build_gx_asset_checks(partitions_defs={"panel": parts}) if c.node_def.name == "gx_panel"]
    io = PolarsParquetIOManager(base_dir=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    good = dg.materialize([panel_asset, *checks], partition_key="good", resources={"io_manager": io}, instance=instance)
    assert good.success and all(e.passed for e in good.get_asset_check_evaluations())
    bad = dg.materialize(
        [panel_asset, *checks], partition_key="bad", resources={"io_manager": io}, instance=instance, raise_on_error=False
    )
    assert not bad.success
    (failed,) = [e for e in bad.get_asset_check_evaluations() if not e.passed]
    assert failed.check_name == "between__shelter_nights" and failed.partition == "bad"
    assert "partition bad" in failed.description
    assert failed.metadata["sample_rows"].value == [3]

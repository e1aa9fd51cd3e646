"""The one engine switch (pipeline.quality.engine): GX and polars agree, the switch is shared by ingestion and
the Dagster checks, and every outcome records its engine."""

import dataclasses

import dagster as dg
import polars as pl
import pytest

from pipeline.quality.checks import build_gx_asset_checks, list_suites
from pipeline.quality.engine import collect_reports, engine_for, validate
from pipeline.quality.gx_runner import ExpectationSpec, load_suite, validate_frame
from pipeline.quality.polars_engine import evaluate_polars, supported


def _frame():
    return pl.DataFrame({"a": [1, 2, None, 4, 4], "b": ["x", "y", "z", None, "x"]})


def _suite():
    base = load_suite("panel")
    exps = (
        ExpectationSpec("between__a", "expect_column_values_to_be_between", {"column": "a", "min_value": 1, "max_value": 3}, True,
                        "a in [1, 3]"),
        ExpectationSpec("null__b", "expect_column_values_to_be_null", {"column": "b"}, False, "b is empty (GX only)"),
        ExpectationSpec("unique__a", "expect_column_values_to_be_unique", {"column": "a"}, True, "a unique"),
    )
    return dataclasses.replace(base, name="mixed", expectations=exps)


def test_engine_switch_by_rows():
    assert engine_for(10, max_gx_rows=10) == "gx" and engine_for(11, max_gx_rows=10) == "polars"
    assert engine_for(1, max_gx_rows=0) == "polars"


def test_unsupported_expectations_go_to_gx_only_and_results_equal_gx():
    suite = _suite()
    assert [supported(e) for e in suite.expectations] == [True, False, True]
    mixed = validate(_frame(), suite, max_gx_rows=0)
    reference = validate(_frame(), suite, max_gx_rows=100)
    assert [o.engine for o in mixed.outcomes] == ["polars", "gx", "polars"] and mixed.engines == ("gx", "polars")
    assert {o.engine for o in reference.outcomes} == {"gx"}
    strip = lambda r: [(o.check_name, o.success, o.unexpected_count, o.sample_rows) for o in r.outcomes]  # noqa: E731
    assert strip(mixed) == strip(reference)
    assert strip(mixed) == [("between__a", False, 2, (3, 4)), ("null__b", False, 4, (0, 1, 2, 4)),
                            ("unique__a", False, 2, (3, 4))]
    with pytest.raises(NotImplementedError, match="expect_column_values_to_be_null"):
        evaluate_polars(_frame(), suite)


def test_every_project_suite_is_fully_supported_by_the_polars_engine():
    from pipeline.quality.checks import REGISTER_SUITE_DIR

    for suite in [*list_suites(), *list_suites(REGISTER_SUITE_DIR)]:
        assert all(supported(e) for e in suite.expectations), suite.name


def test_collect_reports_sees_every_validation_even_when_an_error_escapes():
    suite = _suite()
    with pytest.raises(RuntimeError):
        with collect_reports() as reports:
            validate(_frame(), suite, max_gx_rows=0)
            raise RuntimeError("refused")
    assert [r.suite for r in reports] == ["mixed"]
    validate(_frame(), suite, max_gx_rows=0)  # outside the context: not collected
    assert len(reports) == 1


@pytest.mark.parametrize("limit,engine", [("0", "polars"), ("1000", "gx")])
def test_dagster_gx_checks_use_the_same_switch_and_record_the_engine(tmp_path, monkeypatch, limit, engine):
    from pipeline.defs.io_managers import PolarsParquetIOManager
    from tests.test_quality import golden_effects

    monkeypatch.setenv("SOM_GX_MAX_ROWS", limit)

    @dg.asset(name="realised_effects")
    def effects() -> pl.DataFrame:
        return golden_effects()

    checks = [c for c in build_gx_asset_checks() if c.node_def.name == "gx_realised_effects"]
    result = dg.materialize([effects, *checks], resources={"io_manager": PolarsParquetIOManager(base_dir=str(tmp_path))},
                            instance=dg.DagsterInstance.ephemeral())
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    assert {e.metadata["engine"].value for e in evaluations} == {engine}
    reference = validate_frame(golden_effects(), load_suite("realised_effects"))
    assert {e.check_name: e.metadata.get("unexpected_count") and e.metadata["unexpected_count"].value for e in evaluations} == \
           {o.check_name: o.unexpected_count for o in reference.outcomes}


def _unique_suite():
    exps = (
        ExpectationSpec("unique__a", "expect_column_values_to_be_unique", {"column": "a"}, True, "a unique"),
        ExpectationSpec("compound", "expect_compound_columns_to_be_unique", {"column_list": ["a", "b"]}, True, "a, b unique"),
    )
    return dataclasses.replace(load_suite("panel"), name="unique", expectations=exps)


def test_uniqueness_screen_skips_the_exact_count_when_no_hash_repeats(monkeypatch):
    import pipeline.quality.polars_engine as pe

    evaluated = []

    def exact(exprs):  # the exact mask, recording when it is evaluated
        return exprs[0].map_batches(lambda s: evaluated.append(1) or s.is_null() & False, return_dtype=pl.Boolean)

    monkeypatch.setattr(pe, "_dup", exact)
    report = evaluate_polars(pl.DataFrame({"a": [1, 2, 3, None], "b": ["x", "y", "x", "x"]}), _unique_suite())
    assert [(o.success, o.unexpected_count) for o in report.outcomes] == [(True, 0), (True, 0)] and not evaluated
    evaluate_polars(pl.DataFrame({"a": [1, 1], "b": ["x", "x"]}), _unique_suite())
    assert evaluated  # a repeated hash: the exact count runs


def test_a_hash_collision_flags_the_screen_but_counts_only_real_duplicates(monkeypatch):
    import pipeline.quality.polars_engine as pe

    monkeypatch.setattr(pe, "_hash", lambda exprs: exprs[0].hash(seed=7) * 0)  # every row collides
    clean = evaluate_polars(pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}), _unique_suite())
    assert [(o.success, o.unexpected_count) for o in clean.outcomes] == [(True, 0), (True, 0)]
    dup = evaluate_polars(pl.DataFrame({"a": [1, 2, 2, 5], "b": ["x", "y", "y", "x"]}), _unique_suite())
    assert [(o.success, o.unexpected_count, o.sample_rows) for o in dup.outcomes] == [(False, 2, (1, 2)), (False, 2, (1, 2))]

"""The ``registers`` asset stores the canonical panel (DESIGN §3.2 types): equal to ``built.panel``, although the
asset hands the IO manager a LazyFrame over the compact frame (never the whole float64 copy in memory)."""

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.registers.files import read_manifest
from pipeline.registers.ingest import build_checked
from tests.test_defs_ingest_checks import _run
from tests.test_ingest import _delivery


@pytest.mark.parametrize("gx_rows", ["0", "50000"])  # polars engine (compact frame) and GX (panel materialised)
def test_stored_panel_equals_the_canonical_panel(tmp_path, monkeypatch, gx_rows):
    monkeypatch.setenv("SOM_GX_MAX_ROWS", gx_rows)
    folder = _delivery(tmp_path)
    result = _run(tmp_path, folder, monkeypatch)
    assert result.success
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    stored = pl.read_parquet(mats["panel"]["path"].value)
    built = build_checked(read_manifest(folder), bytes.fromhex("ab" * 32)).build
    assert built.schema  # the build is compact: some columns are stored in smaller types than the canonical ones
    assert built.frame.schema != built.panel.schema
    assert_frame_equal(stored, built.panel)  # same values, same canonical types, same row order
    assert {stored.schema[c] for c in built.schema} <= {pl.Int64, pl.Float64}
    assert mats["panel"]["dagster/row_count"].value == built.panel.height
    types = {c.name: c.type for c in mats["panel"]["dagster/column_schema"].value.columns}
    assert [c for c, t in types.items() if t == "float"] == [c for c, t in built.panel.schema.items() if t == pl.Float64]


def test_panel_lazy_is_the_canonical_panel(tmp_path):
    built = build_checked(read_manifest(_delivery(tmp_path)), bytes.fromhex("ab" * 32), max_gx_rows=0).build
    lazy = built.panel_lazy()
    assert isinstance(lazy, pl.LazyFrame) and "panel" not in built.__dict__  # nothing materialised yet
    assert lazy.collect_schema() == built.panel_schema
    assert_frame_equal(lazy.collect(), built.panel)
    assert isinstance(dg.Output(lazy).value, pl.LazyFrame)

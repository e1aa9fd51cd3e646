"""The ingestion's fast paths give exactly what the general paths give.

* DREAM Parquet week columns read as Arrow dictionaries (:meth:`_DreamSource.counts_of`) count every cell in the
  same code group as the polars text path (:func:`_group_matrix`) — codes, blanks, empty text, padded or
  zero-led codes, non-codes, several row groups with different dictionaries, numeric columns;
* Arrow dictionary indices are read with their nulls, also from a sliced array;
* compact outcome arrays keep every value (:func:`_compact_type`);
* the compact panel of a build is the canonical panel: ``PanelBuild.panel`` and the streamed
  ``write_panel`` give the same frame as the canonical types applied by hand.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from pipeline.registers import config as cfg
from pipeline.registers.files import Manifest
from pipeline.registers.panel import (
    PanelBuild,
    _compact_type,
    _Ctx,
    _dictionary_cells,
    _DreamSource,
    _group_matrix,
)


def _lut() -> np.ndarray:
    groups = cfg.dream_groups()
    names = list(groups.groups)
    lut = np.full(1001, 255, dtype=np.uint8)
    for lo, hi, g in groups.ranges:
        lut[max(lo, 1) + 1:min(hi, 999) + 2] = names.index(g)
    return lut


def _manifest(folder) -> Manifest:
    return Manifest(folder=folder, vintage="2020-06", period_start=dt.date(2019, 1, 1), period_end=dt.date(2019, 12, 31),
                    files=("dream.parquet",))


def test_dictionary_cells_with_nulls_and_offset():
    arr = pa.array(["a", None, "b", "a", None, "c", "b"]).dictionary_encode()
    rows, codes = _dictionary_cells(arr.indices)
    assert rows is not None and rows.tolist() == [0, 2, 3, 5, 6] and codes.tolist() == [0, 1, 0, 2, 1]
    rows, codes = _dictionary_cells(arr.slice(3, 3).indices)
    assert rows is not None and rows.tolist() == [0, 2] and codes.tolist() == [0, 2]
    rows, codes = _dictionary_cells(pa.array(["x", "y", "x"]).dictionary_encode().indices)
    assert rows is None and codes.tolist() == [0, 1, 0]


def test_dream_dictionary_path_equals_text_path(tmp_path):
    rng = np.random.default_rng(3)
    words = ["701", "111", "881", "", " 12", "012", "abc", "0", "1000", "99", "651", None]
    n = 5_000
    cols = {f"Y_19{w:02d}": [words[i] for i in rng.integers(0, len(words), n)] for w in range(1, 6)}
    cols["Y_1906"] = rng.integers(0, 900, n).tolist()  # a numeric week column takes the polars path
    table = pa.table({"PNR": [f"{i:010d}" for i in range(n)],
                      **{c: pa.array(v).dictionary_encode() if c != "Y_1906" else pa.array(v) for c, v in cols.items()}})
    path = tmp_path / "dream.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:  # several row groups, each with its own dictionary
        for lo in range(0, n, 1_300):
            writer.write_table(table.slice(lo, 1_300))
    ctx = _Ctx(_manifest(tmp_path), cfg.ColumnMap(), 0)
    names = list(cols)
    src = _DreamSource(ctx, "dream.parquet", "PNR", names)
    lut = _lut()
    width = 16
    slot = np.arange(256)
    slot[254], slot[255] = 14, 15
    fast, bad = src.counts_of(names, lut, slot, width)
    for g in (_group_matrix(src.frame_of(names), lut),
              _group_matrix(pl.read_parquet(path, columns=names).with_columns(pl.all().cast(pl.Utf8)), lut)):
        expected = np.stack([(slot[g] == k).sum(axis=1) for k in range(width)], axis=1)
        assert fast.shape == (n, width)
        assert np.array_equal(fast[:, [k for k in range(width) if k != 14]], expected[:, [k for k in range(width) if k != 14]])
        assert bad == [bool((g[:, j] == 255).any()) for j in range(len(names))]
    # slot 14 (blank) is never read: blank cells only decide nothing
    assert fast[:, 15].any() and fast[:, :14].any()  # non-codes and codes are both present


def test_compact_type_keeps_values():
    assert _compact_type(np.array([0.0, 3.0, 366.0])) == np.uint16
    assert _compact_type(np.array([0.0, 53.0])) == np.uint8
    assert _compact_type(np.array([0.0, 70_000.0])) == np.uint32
    assert _compact_type(np.array([1.5, 2.0])) == np.float64
    assert _compact_type(np.array([-1.0, 2.0])) == np.float64
    assert _compact_type(np.array([np.nan, 2.0])) == np.float64
    assert _compact_type(np.array([1e12])) == np.float64
    v = np.array([0.0, 17.0, 366.0])
    assert np.array_equal(v.astype(_compact_type(v)).astype(np.float64), v)


def test_compact_panel_is_the_canonical_panel(tmp_path):
    frame = pl.DataFrame({"person_id": ["b", "a", "c"], "year": pl.Series([2019, 2020, 2021], dtype=pl.Int16),
                          "sex": pl.Series([1, 2, 1], dtype=pl.Int8), "shelter_nights": pl.Series([0, 366, 5], dtype=pl.UInt16),
                          "earnings_dkk": [0.0, 1.5e5, 2.25]})
    schema = {"year": pl.Int64(), "sex": pl.Int64(), "shelter_nights": pl.Float64(), "earnings_dkk": pl.Float64()}
    built = PanelBuild(frame, pl.DataFrame(), {}, schema=schema)
    expected = frame.with_columns(pl.col(c).cast(t) for c, t in schema.items())
    built.write_panel(tmp_path / "panel.parquet")
    assert_frame_equal(pl.read_parquet(tmp_path / "panel.parquet"), expected, check_exact=True)
    assert_frame_equal(built.panel, expected, check_exact=True)
    plain = PanelBuild(expected, pl.DataFrame(), {})  # a frame in canonical types (a handed-over panel) is the panel
    assert plain.panel is expected


def test_pnr_fast_path_accepts_exactly_ten_ascii_digits():
    import pytest

    from pipeline.registers.files import DeliveryError, as_pnr

    good = ["0101901234", "3112999999", " 0101901234 ", "010190-1234", None]
    assert as_pnr(pl.Series("PNR", good), "f", "PNR").to_list() == ["0101901234", "3112999999", "0101901234",
                                                                     "0101901234", None]
    # untouched when already clean; trimmed text (tabs, blanks) and categorical columns take the checked path
    clean = pl.Series("PNR", ["0101901234", None, "3112999999"])
    assert as_pnr(clean, "f", "PNR").equals(clean)
    assert as_pnr(pl.Series("PNR", ["\t0101901234", "3112999999 "]), "f", "PNR").to_list() == ["0101901234", "3112999999"]
    cat = as_pnr(pl.Series("PNR", ["0101901234", "3112999999"], dtype=pl.Categorical), "f", "PNR")
    assert cat.dtype == pl.Utf8 and cat.to_list() == ["0101901234", "3112999999"]
    for bad in ["+101901234", "-101901234", "010190123A", "１２３４５６７８９０", "01019 1234", "1_01901234", "1e10000000",
                "010190123", "01019012345", "0x10190123", "010190-123", "0101901234\n1"]:
        with pytest.raises(DeliveryError, match="pnr-format"):
            as_pnr(pl.Series("PNR", ["0101901234", bad]), "f", "PNR")

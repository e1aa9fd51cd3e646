"""The shared output helpers: strict JSON, atomic writes, one hash implementation, the small-cell rule."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline import jsonio
from pipeline.atomic import atomic_dir, atomic_file, write_text_atomic
from pipeline.disclosure import (
    SUPPRESSED,
    is_small,
    suppress_frame,
    suppress_records,
    suppress_scalar,
    suppress_small_cells,
    suppress_verdict,
)
from pipeline.hashing import content_hash, file_sha256, files_sha256

# ----------------------------------------------------------------------------- strict JSON

@dataclass(frozen=True)
class _Point:
    x: float
    when: dt.date


def test_to_jsonable_converts_and_nulls_non_finite_numbers():
    doc = {"nan": float("nan"), "inf": float("inf"), "np": np.float64("nan"), "i": np.int64(3), "b": np.bool_(True),
           "arr": np.array([1.0, np.inf]), "date": dt.date(2024, 1, 2), "path": Path("/a/b"), "t": (1, 2),
           "frame": pl.DataFrame({"a": [1.0, None]}), "series": pl.Series([1, 2]),
           "dc": _Point(float("-inf"), dt.date(2020, 1, 1)),
           1: "int key"}
    out = jsonio.to_jsonable(doc)
    assert out == {"nan": None, "inf": None, "np": None, "i": 3, "b": True, "arr": [1.0, None], "date": "2024-01-02",
                   "path": "/a/b", "t": [1, 2], "frame": [{"a": 1.0}, {"a": None}], "series": [1, 2],
                   "dc": {"x": None, "when": "2020-01-01"}, "1": "int key"}
    text = jsonio.dumps(doc)
    assert "NaN" not in text and "Infinity" not in text and jsonio.loads(text) == out


def test_strict_mode_and_unknown_types():
    with pytest.raises(jsonio.NonFiniteError):
        jsonio.to_jsonable({"a": [float("nan")]}, nonfinite="error")
    with pytest.raises(TypeError, match="object is not JSON-serialisable"):
        jsonio.dumps({"a": object()})
    assert jsonio.to_jsonable({"a": {1, 3, 2}}) == {"a": [1, 2, 3]}
    assert jsonio.dumps({"a": object()}, fallback=lambda v: "obj") == '{\n  "a": "obj"\n}'
    for bad in ("NaN", "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(ValueError, match="not strict JSON"):
            jsonio.loads(bad)


def test_write_json_to_a_path_is_atomic_and_strict(tmp_path):
    target = tmp_path / "deep" / "out.json"
    assert jsonio.write_json(target, {"x": float("nan")}) == str(target)
    assert json.loads(target.read_text(), parse_constant=lambda c: pytest.fail(c)) == {"x": None}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_dash_writes_only_json_to_stdout_while_other_output_goes_to_stderr(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with jsonio.stdout_reserved("-"):
        print("a table for people")
        jsonio.write_json("-", {"ok": True})
        print("Wrote nothing")
    assert jsonio.loads(out.getvalue()) == {"ok": True}
    assert err.getvalue() == "a table for people\nWrote nothing\n"
    with jsonio.stdout_reserved(Path("file.json")):  # a path target leaves stdout alone
        print("human")
    assert out.getvalue().endswith("human\n")


# ----------------------------------------------------------------------------- atomic writes

def test_atomic_file_keeps_the_old_content_on_error(tmp_path):
    target = tmp_path / "a.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "delivery"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with atomic_dir(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delivery"]


# ----------------------------------------------------------------------------- hashes

def test_one_hash_implementation_with_unchanged_digests(tmp_path):
    from pipeline.store.repository import content_hash as store_hash
    from som_models.parameters import content_hash as model_hash

    a, b = tmp_path / "panel.parquet", tmp_path / "t.csv"
    a.write_bytes(b"x" * (3 << 20))
    b.write_bytes(b"abc")
    assert file_sha256(a) == hashlib.sha256(a.read_bytes()).hexdigest()
    expected = hashlib.sha256(b"panel.parquet" + a.read_bytes() + b"t.csv" + b"abc").hexdigest()
    assert files_sha256(a, None, b) == expected
    doc = {"b": [1, 2.5], "a": "æøå"}
    assert store_hash is content_hash is model_hash
    assert content_hash(doc) == hashlib.sha256('{"a":"æøå","b":[1,2.5]}'.encode()).hexdigest()


# ----------------------------------------------------------------------------- small cells

def test_small_is_below_min_cell_or_unknown():
    assert is_small(4, 5) and is_small(None, 5) and is_small(float("nan"), 5) and is_small(0, 5)
    assert not is_small(5, 5)
    assert suppress_scalar(1.5, 4, 5) is None and suppress_scalar(1.5, 5, 5) == 1.5
    with pytest.raises(ValueError, match="min_cell"):
        suppress_scalar(1.0, 10, 0)


def test_tables_are_suppressed_by_their_count_columns():
    df = pl.DataFrame({"outcome": ["y", "y", "y"], "estimate": [1.23456, 2.0, 3.0], "n_treated": [10, 4, None],
                       "n_control": [50, 50, 50]})
    typed = suppress_frame(df, count_columns=["n_treated", "n_control"], value_columns=["estimate"], min_cell=5)
    assert typed["suppressed"].to_list() == [False, True, True]
    assert typed["estimate"].to_list() == [1.23456, None, None] and typed["n_control"].to_list() == [50, None, None]
    assert typed.schema["estimate"] == pl.Float64
    shown = suppress_small_cells(df, count_columns=["n_treated", "n_control"], value_columns=["estimate"], min_cell=5)
    mark = SUPPRESSED.format(n=5)
    assert shown.row(0) == ("y", "1.235", "10", "50", False) and shown.row(1) == ("y", mark, mark, mark, True)
    rows = suppress_records(df.to_dicts(), count_keys=["n_treated"], value_keys=["estimate"], min_cell=5)
    assert [r["estimate"] for r in rows] == [1.23456, None, None] and rows[1]["n_control"] == 50


def test_a_small_verdict_loses_its_numbers_and_the_sentence_quoting_them():
    record = {"assumption": "success_rate", "label": "inconclusive", "assumed": 0.2, "realised": 0.1, "ci_low": 0.0,
              "ci_high": 0.3, "p_adjusted": 0.5, "sentence": "Inconclusive: 0.1, but only 3 treated persons were observed.",
              "evidence": {"n_treated": 3, "tost": {}, "path": [{"event_time": 1, "realised": 0.1, "n_treated": 3}]}}
    out = suppress_verdict(record, 5)
    assert out["realised"] is None and out["ci_low"] is None and out["p_adjusted"] is None and out["assumed"] == 0.2
    assert "3 treated" not in out["sentence"] and "fewer than 5" in out["sentence"] and out["label"] == "inconclusive"
    assert out["evidence"]["path"][0] == {"event_time": 1, "realised": None, "n_treated": None, "suppressed": True}
    assert record["realised"] == 0.1  # not modified
    big = suppress_verdict({**record, "evidence": {"n_treated": 50}}, 5)
    assert big["realised"] == 0.1 and big["sentence"] == record["sentence"]

"""Spells crossing the period end (issue 16): the issue's delivery, by hand.

Period 2021-01-01 … 2021-12-31, vintage 2022-06 (extraction 2022-06-30). Every spell register holds a spell
from 30 December 2021 to 3 January 2022: the days ``30 ≤ d < 3 Jan`` inside the period are 30 and 31 December,
so each outcome is 2 in 2021. A date after the extraction is refused naming file, column, check and row.
"""

import datetime as dt
import json

import polars as pl
import pytest

from pipeline.registers import DeliveryError, build_panel, ingest, read_manifest
from pipeline.registers.files import extraction_date
from pipeline.registers.ingest import build_checked

KEY = b"p" * 32
A, B = "3012851234", "0101900123"
D = dt.date
START, END = D(2021, 12, 30), D(2022, 1, 3)


def _delivery(tmp_path, *, lpr_end=END, vintage="2022-06"):
    d = tmp_path / "delivery"
    d.mkdir()
    pl.DataFrame({"PNR": [A, B], "KOEN": [1, 2], "FOED_DAG": [D(1985, 12, 30), D(1990, 1, 1)], "KOM": [101, 751]}
                 ).write_parquet(d / "bef202112.parquet")
    pl.DataFrame({"PNR": [A, B], "RECNUM": ["r1", "r2"], "D_INDDTO": [START, START], "D_UDDTO": [lpr_end, END],
                  "C_PATTYPE": [0, 0], "C_PSYK": [0, 1]}).write_parquet(d / "lpr_adm2021.parquet")
    pl.DataFrame({"PNR": [A], "START_DATO": [START], "SLUT_DATO": [END]}).write_parquet(d / "shelter.parquet")
    pl.DataFrame({"PNR": [B], "IND_FGSLDTO": [START], "IND_LOESDTO": [END]}).write_parquet(d / "krin.parquet")
    pl.DataFrame({"PNR": [A, B], "PGF": [150, 250], "SAG_VFRA": [START, START], "SAG_VTIL": [END, END]}
                 ).write_parquet(d / "bua.parquet")
    # a course running past the period end (ends before the extraction)
    pl.DataFrame({"PNR": [A], "INDSATS": ["HF"], "START_DATO": [D(2021, 3, 1)], "SLUT_DATO": [D(2022, 2, 1)]}
                 ).write_parquet(d / "indsats.parquet")
    files = ["bef202112.parquet", "lpr_adm2021.parquet", "shelter.parquet", "krin.parquet", "bua.parquet",
             "indsats.parquet"]
    (d / "manifest.json").write_text(json.dumps({"vintage": vintage, "period_start": "2021-01-01",
                                                 "period_end": "2021-12-31", "files": files}))
    return d


def test_each_spell_register_counts_the_days_inside_the_period(tmp_path):
    built = build_panel(read_manifest(_delivery(tmp_path)), KEY)
    rows = {r["sex"]: r for r in built.panel.to_dicts()}
    a, b = rows[1], rows[2]
    assert (a["somatic_bed_days"], a["psychiatric_bed_days"], a["shelter_nights"], a["placement_days"]) == (2, 0, 2, 2)
    assert (b["psychiatric_bed_days"], b["somatic_bed_days"], b["prison_days"], b["preventive_days"]) == (2, 0, 2, 2)
    assert built.treatments.to_dicts()[0]["end_year"] == 2022 and built.treatments.to_dicts()[0]["course_days"] == 337


def test_the_issue_check_between_D_UDDTO_passes(tmp_path):
    checked = build_checked(_delivery(tmp_path), KEY, max_gx_rows=10**9)  # Great Expectations itself
    outcomes = {o.check_name: o for r in checked.validations if r.suite == "register_lpr" for o in r.outcomes}
    assert outcomes["between__D_UDDTO"].success and outcomes["between__D_UDDTO"].engine == "gx"


@pytest.mark.parametrize("max_gx_rows", [0, 10**9])
def test_a_date_after_the_extraction_is_refused_with_file_column_and_row(tmp_path, max_gx_rows):
    d = _delivery(tmp_path, lpr_end=D(2022, 7, 1))
    out = tmp_path / "out"
    with pytest.raises(DeliveryError) as exc:
        ingest(d, out, KEY, max_gx_rows=max_gx_rows)
    msg = str(exc.value)
    assert msg.startswith("lpr_adm2021.parquet: check between__D_UDDTO failed (blocking) on column 'D_UDDTO'")
    assert "1 of 2 rows fail" in msg and msg.endswith("first rows: row 0")
    assert A not in msg and B not in msg and not out.exists()


def test_the_last_day_of_the_vintage_month_is_accepted(tmp_path):
    built = build_panel(read_manifest(_delivery(tmp_path, lpr_end=D(2022, 6, 30))), KEY)
    assert built.panel.filter(pl.col("sex") == 1).get_column("somatic_bed_days").item() == 2


def test_extraction_date_rules():
    today = D(2026, 11, 29)
    assert extraction_date("2022-06", D(2021, 12, 31), today) == D(2022, 6, 30)
    assert extraction_date("2024-02-b", D(2023, 12, 31), today) == D(2024, 2, 29)  # leap year
    assert extraction_date("2026-12", D(2025, 12, 31), today) == today  # never in the future
    assert extraction_date("v1", D(2021, 12, 31), today) == today  # no month named: up to today
    assert extraction_date("2021-06", D(2021, 12, 31), today) == D(2021, 12, 31)  # never before the period end


def test_a_vintage_drawn_before_the_period_end_is_refused(tmp_path):
    # drawn in June 2021 for a period to 31 December 2021: the second half would read as zero days
    d = _delivery(tmp_path, vintage="2021-06")
    with pytest.raises(DeliveryError) as exc:
        read_manifest(d)
    msg = str(exc.value)
    assert "manifest.json: vintage 2021-06 names an extraction in 2021-06, before period_end 2021-12-31" in msg
    assert "'extracted'" in msg


def test_the_vintage_of_the_period_end_month_and_an_explicit_extraction_are_accepted(tmp_path):
    assert read_manifest(_delivery(tmp_path, vintage="2021-12")).extraction == D(2021, 12, 31)
    (tmp_path / "x").mkdir()
    d = _delivery(tmp_path / "x", vintage="2021-06")
    doc = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**doc, "extracted": "2022-01-15"}))
    assert read_manifest(d).extraction == D(2022, 1, 15)


def test_vintage_year_0000_is_refused_as_a_delivery_error(tmp_path):
    with pytest.raises(DeliveryError, match="vintage 0000-06: year 0000 is no year"):
        read_manifest(_delivery(tmp_path, vintage="0000-06"))

"""The register suites: GX and the polars evaluator of the same suite give the same report."""

import datetime as dt
import json

import polars as pl
import pytest

from pipeline.quality.gx_runner import list_suites, load_suite, validate_frame
from pipeline.registers.config import REGISTERS, SUITES
from pipeline.registers.validate import _for_gx, bind, describe, evaluate_polars, register_suite

PARAMS = {"period_start": dt.date(2019, 1, 1), "period_end": dt.date(2020, 12, 31), "period_end_next": dt.date(2021, 1, 1),
          "extraction": dt.date(2021, 6, 30)}
D = dt.date


def _frames():
    """A small frame per register with some rows breaking each kind of rule."""
    pnr = ["0101901234", "0202855678", "12345", None, "0303701112", "0303701112"]
    return {
        "bef": pl.DataFrame({
            "PNR": pnr, "KOEN": [1, 2, 3, 1, None, 2],
            "FOED_DAG": [D(1990, 1, 1), D(2021, 5, 1), D(1980, 1, 1), None, D(1885, 1, 1), D(1970, 3, 3)],
            "KOM": [101, 751, 99, 101, 101, None], "YEAR": [2019, 2019, 2019, 2019, 2020, 2020],
        }).with_columns(pl.date(pl.col("YEAR"), 12, 31).alias("STATUS_DATE")),
        "dream": pl.DataFrame({"PNR": pnr, "CODES_OUTSIDE_GROUPS": [0, 0, 3, 0, 1, 0]}),
        "ind": pl.DataFrame({"PNR": pnr, "YEAR": [2019, 2019, 2019, 2019, 2020, 2020],
                             "LOENMV_13": [1.5, -3e9, None, 0.0, 10.0, 2.0]}),
        "lpr": pl.DataFrame({
            "PNR": pnr, "RECNUM": ["1", "2", "2", None, "5", "6"],
            "D_INDDTO": [D(2019, 1, 1), D(2021, 2, 1), D(2019, 5, 5), D(2019, 1, 1), None, D(2020, 1, 1)],
            "D_UDDTO": [D(2019, 1, 5), None, D(2019, 5, 1), D(2022, 1, 1), None, D(2021, 1, 1)],
            "C_PATTYPE": [0, 2, 7, 0, 3, 1], "C_PSYK": [1, 0, 2, None, 0, 0],
            "PATTYPE_KIND": ["inpatient", "outpatient", None, "inpatient", "emergency", "partday"],
        }),
        "kraf": pl.DataFrame({
            "PNR": pnr, "AFG_ADTO": [D(2019, 3, 1), D(2020, 1, 1), None, D(2018, 12, 31), D(2019, 6, 6), D(2021, 1, 1)],
            "AFG_AFGTYP3": [100, 950, 50, None, 300, 100],
            "SANCTION_GROUP": ["conviction", "no_conviction", None, None, "conviction", "conviction"],
            "YEAR_START": [D(2019, 1, 1)] * 6, "YEAR_END": [D(2019, 12, 31)] * 6,
        }),
        "krin": pl.DataFrame({"PNR": pnr,
                              "IND_FGSLDTO": [D(2019, 1, 1), D(2019, 2, 1), D(2022, 1, 1), None, D(2019, 1, 1), D(2019, 1, 1)],
                              "IND_LOESDTO": [None, D(2019, 1, 1), None, None, D(2021, 1, 2), D(2021, 1, 1)]}),
        "shelter": pl.DataFrame({"PNR": pnr,
                                 "START_DATO": [D(2019, 1, 1), D(2019, 2, 1), D(1800, 1, 1), None, D(2019, 1, 1), D(2019, 1, 1)],
                                 "SLUT_DATO": [None, D(2019, 1, 1), None, None, D(2021, 1, 2), D(2021, 1, 1)]}),
        "bua": pl.DataFrame({"PNR": pnr, "PGF": [111, 350, None, 211, 430, 111],
                             "PGF_GROUP": ["placement", None, None, "preventive", "preventive", "placement"],
                             "SAG_VFRA": [D(2010, 1, 1)] * 6, "SAG_VTIL": [None, D(2009, 1, 1), None, None, None, None]}),
        "indsats": pl.DataFrame({"PNR": pnr, "INDSATS": ["HF", None, "HF", "HF", "HF", "HF"],
                                 "START_DATO": [D(2019, 1, 1), D(2019, 1, 1), D(2022, 1, 1), D(2019, 1, 1), D(2019, 6, 1),
                                                D(2019, 6, 1)],
                                 "SLUT_DATO": [None, D(2018, 1, 1), None, None, None, None],
                                 "ARM": ["T", "C", "X", None, "T", "T"]}),
    }


@pytest.mark.parametrize("name", sorted(REGISTERS))
def test_polars_evaluator_agrees_with_great_expectations(name):
    frame = _frames()[name]
    suite = bind(load_suite(SUITES / f"{name}.json"), PARAMS)
    gx = validate_frame(_for_gx(frame), suite)
    pol = evaluate_polars(frame, suite)
    assert not gx.success and not pol.success
    for a, b in zip(gx.outcomes, pol.outcomes, strict=False):
        assert a.check_name == b.check_name
        assert (a.success, a.unexpected_count, a.sample_rows) == (b.success, b.unexpected_count, b.sample_rows), a.check_name
        if a.unexpected_percent is not None:
            assert b.unexpected_percent == pytest.approx(a.unexpected_percent)
    assert describe(gx, [(f"{name}.parquet", frame.height)]) == describe(pol, [(f"{name}.parquet", frame.height)])


def test_panel_suite_polars_agrees_with_great_expectations():
    suite = load_suite("panel")
    cols = suite.expectations[1].kwargs["column_set"]
    row = {c: 1.0 for c in cols} | {"person_id": "0123456789abcdef", "year": 2020, "sex": 1, "birth_year": 1990, "age": 30,
                                    "municipality": 101}
    frame = pl.DataFrame([row, row | {"person_id": "RAW0101901234", "sex": 3, "shelter_nights": -1.0}, row | {"year": 1985}])
    gx, pol = validate_frame(frame, suite), evaluate_polars(frame, suite)
    assert [(o.check_name, o.success, o.unexpected_count, o.sample_rows) for o in gx.outcomes] == \
           [(o.check_name, o.success, o.unexpected_count, o.sample_rows) for o in pol.outcomes]
    assert not pol.success


def test_register_suites_are_native_gx_json_with_parameters_bound():
    for name in REGISTERS:
        doc = json.loads((SUITES / f"{name}.json").read_text())
        assert doc["meta"]["dagster_asset"] and all(e["meta"]["description"] for e in doc["expectations"])
        bound = register_suite(name, PARAMS)
        assert "${" not in json.dumps([e.kwargs for e in bound.expectations])
    # The register suites live in a sub-folder: they are not checks of a stored asset (gx_<suite>) but checks of
    # the ingestion (the ``registers`` multi-asset, see tests/test_defs_ingest_checks.py).
    assert all(s.asset != "registers" for s in list_suites())


def test_refusal_lines_name_file_and_row_within_the_file():
    frame = pl.concat([_frames()["ind"].head(2), _frames()["ind"].tail(4)])
    report = evaluate_polars(frame, bind(load_suite(SUITES / "ind.json"), PARAMS))
    lines = describe(report, [("ind2019.parquet", 2), ("ind2020.parquet", 4)])
    assert any("ind2019.parquet: check between__LOENMV_13" in ln and "first rows: ind2019.parquet row 1" in ln for ln in lines)
    assert any("length__PNR" in ln and "ind2020.parquet row 0" in ln for ln in lines)
    assert not any("0101901234" in ln for ln in lines)

"""A handed-over panel as a kind of delivery: staging, reading, pseudonyms, and which checks apply."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipeline.quality.gx_runner import load_suite
from pipeline.quality.handover import handover_suite
from pipeline.registers import DeliveryError, build_panel, read_manifest
from pipeline.registers.handover import check_vintage, default_vintage, write_panel_delivery

PNRS = ["0101801234", "0202802345", "0303803456"]


def _files(tmp_path):
    panel = pl.DataFrame({"cpr": [p for p in PNRS for _ in (0, 1)], "aar": [2019, 2020] * 3,
                          "naetter": [3.0, 0.0, 1.0, 2.0, 0.0, 1.0]})
    treat = pl.DataFrame({"cpr": [PNRS[0]], "start": [2020]})
    panel.write_csv(tmp_path / "panel 2023.csv")
    treat.write_csv(tmp_path / "deltagere.csv")
    return tmp_path / "panel 2023.csv", tmp_path / "deltagere.csv"


COLUMNS = {"person_id": "cpr", "year": "aar", "start_year": "start"}


def test_staging_is_deterministic_and_reads_back_pseudonymised(tmp_path):
    panel, treat = _files(tmp_path)
    root = tmp_path / "handover"
    first = write_panel_delivery(panel, treat, vintage="2023-06", columns=COLUMNS, root=root)
    again = write_panel_delivery(panel, treat, vintage="2023-06", columns=COLUMNS, root=root)
    assert first == again and first.name.startswith("2023-06-")
    other = write_panel_delivery(panel, treat, vintage="2024-06", columns=COLUMNS, root=root)
    assert other != first
    manifest = read_manifest(first)
    assert manifest.kind == "panel" and manifest.vintage == "2023-06"
    assert (manifest.period_start.year, manifest.period_end.year) == (2019, 2020)
    built = build_panel(manifest, b"k" * 32)
    assert built.panel.columns == ["person_id", "year", "naetter"]
    assert built.panel.height == 6 and built.treatments.height == 1
    ids = set(built.panel["person_id"]) | set(built.treatments["person_id"])
    assert not ids & set(PNRS) and all(len(i) == 16 for i in ids)  # keyed pseudonyms, never the raw number
    from pipeline.registers import pseudonymise

    # the CSV id is read as text: its leading zero is kept (the pseudonym is that of the 10-digit number)
    assert set(built.panel["person_id"]) == set(pseudonymise(pl.Series(PNRS), b"k" * 32))
    assert built.treatments["person_id"][0] in set(built.panel["person_id"])
    text = (first / "manifest.json").read_text()
    assert not any(p in text for p in PNRS)
    assert json.loads(text)["handover"]["source"]["panel.csv"] == "panel 2023.csv"


def test_bad_handover_is_refused_before_anything_is_staged(tmp_path):
    panel, treat = _files(tmp_path)
    root = tmp_path / "handover"
    with pytest.raises(DeliveryError, match="column 'year' .year. not found"):
        write_panel_delivery(panel, treat, vintage="v1", columns={"person_id": "cpr"}, root=root)
    with pytest.raises(DeliveryError, match="vintage"):
        write_panel_delivery(panel, treat, vintage="../../x", columns=COLUMNS, root=root)

    def needs_outcome(frame):
        raise DeliveryError("panel: outcome column 'shelter_nights' not found")

    with pytest.raises(DeliveryError, match="shelter_nights"):
        write_panel_delivery(panel, treat, vintage="v1", columns=COLUMNS, root=root, check=needs_outcome)
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize("label, ok", [("2023-06", True), ("panel_2023.v2", True), ("x/../../ESCAPED", False),
                                       ("..", False), ("", False), ("a|b", False), ("-x", False)])
def test_vintage_labels(label, ok):
    if ok:
        assert check_vintage(label) == label
    else:
        with pytest.raises(DeliveryError):
            check_vintage(label)


def test_default_vintage_is_a_safe_label(tmp_path):
    assert default_vintage(tmp_path / "Panel 2023 (final).csv") == "Panel-2023-final"
    assert check_vintage(default_vintage(tmp_path / "§§§.csv")) == "panel"


def test_register_only_expectations_do_not_apply_to_a_handed_over_panel():
    suite = load_suite("panel")
    adapted, skipped = handover_suite(suite, ["person_id", "year", "naetter"])
    kept = {e.check_name: e for e in adapted.expectations}
    columns = next(e for e in kept.values() if e.type == "expect_table_columns_to_match_set")
    assert columns.kwargs["column_set"] == ["person_id", "year"]
    assert "not_null__person_id" in kept and "not_null__year" in kept
    assert "not_null__sex" in skipped and "sex" in skipped["not_null__sex"]
    assert len(kept) + len(skipped) == len(suite.expectations)
    # A handed-over panel that has a register column is held to that column's rule.
    adapted, skipped = handover_suite(suite, ["person_id", "year", "shelter_nights"])
    assert any(e.kwargs.get("column") == "shelter_nights" for e in adapted.expectations)


def test_a_panel_labelled_within_its_last_year_is_accepted(tmp_path):
    # a handed-over panel's period is its years (to 31 December of the last); its vintage is only a label
    panel, treat = _files(tmp_path)
    staged = write_panel_delivery(panel, treat, vintage="2020-06", columns=COLUMNS, root=tmp_path / "handover")
    manifest = read_manifest(staged)
    assert manifest.kind == "panel" and manifest.vintage == "2020-06" and str(manifest.period_end) == "2020-12-31"

"""The effects asset scans the panel and reads only the columns the evaluation uses (ev.panel_columns_read): the
register outcomes nobody needs are left out, every other column kept, and the results are those of the whole
panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipeline import evaluation as ev
from pipeline.registers import build_panel, read_manifest
from pipeline.registers.config import outcome_registers

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "assets" / "evaluations" / "housing_first_demo.yaml"


@pytest.fixture(scope="module")
def demo_panel(demo_delivery):
    folder, _ = demo_delivery
    built = build_panel(read_manifest(folder), b"k" * 32)
    return built.panel, built.treatments


def test_only_unused_register_outcomes_are_left_out(demo_panel):
    panel, _ = demo_panel
    loaded = ev.load_spec(SPEC)
    kept = ev.panel_columns_read(panel.columns, loaded.spec, loaded.seed)
    dropped = set(panel.columns) - set(kept)
    assert dropped and dropped <= set(outcome_registers())
    assert {"person_id", "year", "shelter_nights", "kontanthjaelp_weeks"} <= set(kept)
    assert set(panel.columns) - set(outcome_registers()) <= set(kept)  # every non-outcome column stays


def test_effects_on_the_selected_columns_equal_those_on_the_whole_panel(demo_panel):
    panel, treatments = demo_panel
    loaded = ev.load_spec(SPEC)
    params = loaded.seed
    selected = panel.select(ev.panel_columns_read(panel.columns, loaded.spec, params))
    full = ev.realised_effects(panel, treatments, loaded.spec, params)
    part = ev.realised_effects(selected, treatments, loaded.spec, params)
    assert_frame_equal(full.table, part.table)
    assert_frame_equal(ev.descriptive_contrast(panel, treatments, loaded.spec, params),
                       ev.descriptive_contrast(selected, treatments, loaded.spec, params))


def test_an_item_mapped_to_another_column_keeps_its_own_column(demo_panel):
    """A spec written for a handed-over panel maps shelter_nights to its column name; on a register panel that
    has shelter_nights itself, map_outcomes takes the item's column — so it is read."""
    from dataclasses import replace

    panel, treatments = demo_panel
    loaded = ev.load_spec(SPEC)
    spec = replace(loaded.spec, outcomes={**loaded.spec.outcomes, "shelter_nights": "herberg_naetter"})
    kept = ev.panel_columns_read(panel.columns, spec, loaded.seed)
    assert "shelter_nights" in kept
    full = ev.realised_effects(panel, treatments, spec, loaded.seed)
    part = ev.realised_effects(panel.select(kept), treatments, spec, loaded.seed)
    assert_frame_equal(full.table, part.table)

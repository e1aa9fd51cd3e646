"""The evaluation spec (docs/evaluation-spec.md): the documented example parses; bad specs name the key."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import evaluation as ev
from som_models.evaluation_spec import parse_evaluation_spec
from som_models.parameters import ParameterError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluation-spec.md"
MINIMAL = {"evaluation": "e", "intervention": "housing_first_demo", "parameters": "p.yaml"}


def documented_example() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "docs/evaluation-spec.md has no yaml example"
    return blocks[0]


def place_spec(tmp_path: Path, text: str) -> Path:
    """Write a spec to tmp/evaluations/ with the demo parameter file at tmp/parameters/ (as in assets/)."""
    (tmp_path / "parameters").mkdir(exist_ok=True)
    shutil.copy(ROOT / "assets" / "parameters" / "housing_first_demo.yaml", tmp_path / "parameters")
    (tmp_path / "evaluations").mkdir(exist_ok=True)
    path = tmp_path / "evaluations" / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_parses(tmp_path):
    loaded = ev.load_spec(place_spec(tmp_path, documented_example()))
    spec = loaded.spec
    assert spec.evaluation == "housing_first_followup_2023" and spec.parameter_version is None
    assert spec.intervention_code == "HOUSING_FIRST"
    assert spec.verdict.alpha == 0.05 and spec.verdict.margin == 0.5 and spec.verdict.min_persons == 20
    assert (spec.verdict.consistency, spec.verdict.path_test) == ("tost", "mean")
    assert spec.outcomes == {"shelter_nights": "herberg_naetter", "kontanthjaelp_weeks": "kh_uger"}
    assert spec.reestimate_consequences == ("kontanthjaelp_weeks",)
    assert spec.data.columns == {"person_id": "cpr_pseudo", "year": "aar", "start_year": "start_aar"}
    assert loaded.data_path("panel") == (tmp_path / "evaluations" / "panel_2023.csv").resolve()
    assert loaded.data_path("delivery") is None


def test_defaults():
    spec = parse_evaluation_spec(MINIMAL)
    assert spec.parameter_version is None and spec.data is None and spec.outcomes == {}
    assert spec.reestimate_consequences is None and spec.update_policy == "precision_weighted"
    assert spec.verdict.consistency == "tost" and spec.verdict.path_test == "mean"
    assert parse_evaluation_spec({**MINIMAL, "parameter_version": 3}).parameter_version == 3
    assert parse_evaluation_spec({**MINIMAL, "reestimate_consequences": False}).reestimate_consequences == ()
    assert parse_evaluation_spec({**MINIMAL, "reestimate_consequences": "all"}).reestimate_consequences is None


@pytest.mark.parametrize("extra, message", [
    ({"colour": "red"}, "colour: unknown key"),
    ({"consistency": "vibes"}, "consistency: 'vibes' is not one of tost"),
    # the former default is refused with the reason (it was not a test), not silently mapped to tost
    ({"consistency": "precision"}, "consistency: 'precision' is no longer accepted: a narrow interval is not a test"),
    ({"path_test": "each"}, "path_test: 'each' is not one of mean, joint"),
    ({"equivalence_margin": 0}, "equivalence_margin: must be > 0"),
    ({"alpha": 0.5}, "alpha: must be in"),
    ({"parameter_version": 0}, "parameter_version: must be ≥ 1"),
    ({"parameter_version": "latest"}, "parameter_version: expected an integer"),
    ({"update_policy": "average"}, "update_policy: 'average' is not one of"),
    ({"data": {"delivery": "d", "panel": "p"}}, "either delivery or panel"),
    ({"data": {"treatments": "t"}}, "data.treatments: needs data.panel"),
    ({"data": {"panel": "p", "columns": {"pnr": "x"}}}, "data.columns.pnr: unknown key"),
    ({"data": {"delivery": "d", "columns": {"year": "aar"}}}, "data.columns: only applies to a panel"),
    ({"data": "folder"}, "data: expected a mapping"),
    ({"outcomes": {"a": "x", "b": "x"}}, "panel column(s) x mapped to more than one item"),
    ({"outcomes": ["a"]}, "outcomes: expected a mapping"),
    ({"reestimate_consequences": 3}, "reestimate_consequences: expected"),
    ({"intervention_code": ""}, "intervention_code: expected a non-empty string"),
])
def test_bad_specs_name_the_key(extra, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        parse_evaluation_spec({**MINIMAL, **extra})


def test_load_spec_checks_items_against_the_parameter_file(tmp_path):
    base = yaml.safe_load(documented_example())
    bad = place_spec(tmp_path, yaml.safe_dump({**base, "outcomes": {"bed_days": "x"}}))
    with pytest.raises(ParameterError, match="outcomes: bed_days is not a consequence item"):
        ev.load_spec(bad)
    bad = place_spec(tmp_path, yaml.safe_dump({**base, "reestimate_consequences": ["bed_days"]}))
    with pytest.raises(ParameterError, match="reestimate_consequences: bed_days"):
        ev.load_spec(bad)
    bad = place_spec(tmp_path, "evaluation: [unclosed")
    with pytest.raises(ParameterError, match="not valid YAML"):
        ev.load_spec(bad)
    with pytest.raises(ParameterError, match="file not found"):
        ev.load_spec(tmp_path / "nope.yaml")

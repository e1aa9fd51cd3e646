"""The Dagster code location loads and wires every asset and GX check."""

import dagster as dg

from pipeline.definitions import asset_keys, build_definitions


def test_definitions_load_with_all_assets_and_checks(tmp_path):
    defs = build_definitions(str(tmp_path))
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == asset_keys() | {"evaluation_plan"}
    assert asset_keys() == {"delivery", "panel", "treatments", "assumptions", "realised_effects", "pretrend_tests",
                                    "descriptive_contrast", "duration_effects", "verdicts", "parameter_candidate",
                                    "parameter_proposal",
                                    "projections", "audit_report", "consequence_profiles"}
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("panel", "in_set__sex") in checks and ("realised_effects", "ge__ci_high__estimate") in checks
    assert ("pretrend_tests", "pretrends_hold") in checks and ("parameter_candidate", "proposal_plausible") in checks
    assert defs.resolve_job_def("evaluation_job") is not None
    assert defs.resolve_sensor_def("landing_sensor") and defs.resolve_schedule_def("rerun_schedule")
    assert defs.resolve_job_def("plan_job") is not None and defs.resolve_sensor_def("approval_sensor")


def test_workspace_points_at_the_definitions_module():
    from pathlib import Path

    import yaml

    ws = yaml.safe_load((Path(__file__).resolve().parents[1] / "workspace.yaml").read_text())
    assert ws["load_from"][0]["python_module"]["module_name"] == "pipeline.definitions"
    import pipeline.definitions as module

    assert isinstance(module.defs, dg.Definitions)

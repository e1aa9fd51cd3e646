"""Heavy libraries are imported on first use: loading the Dagster code location or the CLI does not import
scipy.stats, scipy.optimize, Great Expectations or matplotlib (issue 16: 1–3 s each per command)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("scipy.stats", "scipy.optimize", "great_expectations", "matplotlib")


@pytest.mark.parametrize("entry", ["pipeline.definitions", "pipeline.cli", "som_models.knowledge", "pipeline.evaluation"])
def test_entry_modules_do_not_import_heavy_libraries(entry):
    code = f"import sys, {entry}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{entry} imports {out}"


def test_the_lazy_module_loads_on_first_use():
    code = ("import sys; from som_models.lazy_scipy import stats; assert 'scipy.stats' not in sys.modules; "
            "from som_models.estimators.results import two_sided_p; p = two_sided_p(1.96); "
            "assert 'scipy.stats' in sys.modules; print(round(p, 3))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0.05"

"""The BLAS thread policy of the entry points (pipeline.threads): one OpenBLAS thread unless SOM_BLAS_THREADS
says otherwise, and a thread variable the user set is kept. Checked in fresh processes, against the thread count
numpy's own OpenBLAS reports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.threads import BLAS_VARIABLES, apply_blas_policy, blas_threads

PROBE = """
import ctypes, glob, os, sys
import {entry}
import numpy
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), "..", "numpy.libs", "*openblas*"))
count = -1
for lib in libs:
    f = getattr(ctypes.CDLL(lib), "scipy_openblas_get_num_threads64_", None)
    if f is not None:
        count = f()
print(os.environ.get("OPENBLAS_NUM_THREADS", "unset"), count)
"""


def _probe(entry: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES and k != "SOM_BLAS_THREADS"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(entry=entry)], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.parametrize("entry", ["pipeline.cli", "pipeline.definitions"])
def test_entry_points_run_one_blas_thread_by_default(entry):
    variable, threads = _probe(entry)
    assert variable == "1"
    if threads != -1:  # numpy's bundled OpenBLAS reports its pool (wheels on Linux)
        assert threads == 1


def test_som_blas_threads_and_user_variables_are_respected():
    variable, threads = _probe("pipeline.cli", SOM_BLAS_THREADS="2")
    assert variable == "2" and threads in (2, -1)
    variable, threads = _probe("pipeline.cli", SOM_BLAS_THREADS="2", OPENBLAS_NUM_THREADS="3")
    assert variable == "3"
    # OMP_NUM_THREADS alone is the user's choice: OPENBLAS_NUM_THREADS (read first by OpenBLAS) is left unset
    variable, threads = _probe("pipeline.cli", OMP_NUM_THREADS="2")
    assert variable == "unset" and threads in (2, -1)


def test_policy_on_a_mapping():
    env: dict[str, str] = {"SOM_BLAS_THREADS": "abc", "MKL_NUM_THREADS": "4"}
    apply_blas_policy(env)
    assert blas_threads(env) == 1
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "4"
    only_omp: dict[str, str] = {"OMP_NUM_THREADS": "3"}
    apply_blas_policy(only_omp)
    assert only_omp == {"OMP_NUM_THREADS": "3"}
    assert blas_threads({"SOM_BLAS_THREADS": "0"}) == 1 and blas_threads({"SOM_BLAS_THREADS": "3"}) == 3

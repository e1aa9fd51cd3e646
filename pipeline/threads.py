"""The BLAS thread policy of the entry points (``som`` and the Dagster code location).

numpy's and scipy's OpenBLAS start one thread per core for every matrix product. On the 2-core servers this
tool runs on, where ingestion, Dagster and polars already keep the cores busy, two BLAS threads made the
estimators' products 5–30× slower than one thread, with the same results (issue 16). So the entry points run
BLAS with one thread unless the user says otherwise:

* ``SOM_BLAS_THREADS=n`` (a positive integer) sets the BLAS threads of ``som`` and the Dagster code location;
* without ``SOM_BLAS_THREADS``, a thread variable the user set (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
  ``MKL_NUM_THREADS`` …) is the user's choice: the policy then sets none of them (OpenBLAS reads
  ``OPENBLAS_NUM_THREADS`` before ``OMP_NUM_THREADS``, so filling one in would override the other); with
  ``SOM_BLAS_THREADS``, the variables the user did not set get its value;
* the variables are read by the BLAS library when numpy is first imported, so the policy is applied before
  that (:func:`apply_blas_policy` says when it came too late).

polars' own thread pool is not touched (``POLARS_MAX_THREADS`` is the user's to set).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

#: the variables BLAS / OpenMP libraries read for their thread count when they are loaded
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                  "VECLIB_MAXIMUM_THREADS")
SETTING = "SOM_BLAS_THREADS"
DEFAULT_THREADS = 1


def blas_threads(environ: MutableMapping[str, str] | None = None) -> int:
    """The BLAS threads the policy asks for: ``SOM_BLAS_THREADS`` if it is a positive integer, else 1."""
    env = os.environ if environ is None else environ
    raw = env.get(SETTING, "").strip()
    if raw.isascii() and raw.isdigit() and int(raw) > 0:
        return int(raw)
    return DEFAULT_THREADS


def apply_blas_policy(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set every BLAS thread variable the user has not set to :func:`blas_threads`.

    Returns False when numpy was already imported in this process (its BLAS has read its variables then, so
    the policy applies to child processes only), True otherwise.
    """
    env = os.environ if environ is None else environ
    if not env.get(SETTING, "").strip() and any(env.get(name, "").strip() for name in BLAS_VARIABLES):
        # the user chose the threads through a library's own variable (e.g. OMP_NUM_THREADS alone): setting the
        # others would override it (OpenBLAS reads OPENBLAS_NUM_THREADS before OMP_NUM_THREADS)
        return "numpy" not in sys.modules
    threads = str(blas_threads(env))
    for name in BLAS_VARIABLES:
        if not env.get(name, "").strip():
            env[name] = threads
    return "numpy" not in sys.modules

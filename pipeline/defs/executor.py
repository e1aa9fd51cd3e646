"""The executor of every job and backfill, chosen by configuration (set once on ``Definitions``).

``SOM_EXECUTOR`` selects it when the code location loads:

* ``in_process`` (default) — every step of a run in the run's own process. An evaluation is a chain of
  small steps; starting a process per step (the multiprocess executor) costs seconds per step and made
  backfills ~20× slower than single runs. Parallelism then comes from running several partitions at once
  (the run queue's ``max_concurrent_runs``).
* ``multiprocess`` — one process per step, at most ``SOM_MAX_CONCURRENT`` at a time (default: CPU count);
  useful when single runs are large (population-scale panels) and independent steps should overlap. Step
  processes are forked from a *forkserver* that has imported the pipeline's heavy modules once
  (:data:`PRELOAD`: Dagster definitions, Great Expectations, the report); spawning a fresh interpreter per step
  re-imports them every time and measured ~2.7× slower (226 s against 83 s for one run on a loaded machine).
* ``package.module:attribute`` — any other executor definition, e.g. ``dagster_k8s:k8s_job_executor`` or
  ``dagster_celery:celery_executor`` (the package must be installed in the image).

``SOM_EXECUTOR_CONFIG`` (a JSON object) configures the chosen executor (``.configured``), e.g.
``{"max_concurrent": 4, "retries": {"enabled": {}}}`` for multiprocess or the k8s executor's
``job_namespace``/``max_concurrent``. A run may still override it in its run config (``execution``).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_ENV, MAX_CONCURRENT_ENV, CONFIG_ENV = "SOM_EXECUTOR", "SOM_MAX_CONCURRENT", "SOM_EXECUTOR_CONFIG"


PRELOAD = ["pipeline.definitions", "pipeline.evaluation", "pipeline.quality.gx_runner", "great_expectations",
           "pipeline.report"]


class ExecutorConfigError(ValueError):
    """The executor settings in the environment cannot be used."""


def _named(name: str) -> dg.ExecutorDefinition:
    module_name, _, attr = name.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ExecutorConfigError(f"{EXECUTOR_ENV}={name}: cannot import the executor ({exc})") from None
    if not isinstance(target, dg.ExecutorDefinition):
        raise ExecutorConfigError(f"{EXECUTOR_ENV}={name}: not a Dagster executor definition")
    return target


def executor_from_env(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor definition described by ``SOM_EXECUTOR``, ``SOM_MAX_CONCURRENT`` and ``SOM_EXECUTOR_CONFIG``."""
    env = os.environ if env is None else env
    name = (env.get(EXECUTOR_ENV) or "in_process").strip()
    raw_config = (env.get(CONFIG_ENV) or "").strip()
    try:
        config = json.loads(raw_config) if raw_config else {}
    except json.JSONDecodeError as exc:
        raise ExecutorConfigError(f"{CONFIG_ENV} is not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise ExecutorConfigError(f"{CONFIG_ENV} must be a JSON object")
    if name in ("in_process", "in-process"):
        base = dg.in_process_executor
    elif name == "multiprocess":
        base = dg.multiprocess_executor
        limit = (env.get(MAX_CONCURRENT_ENV) or "").strip()
        if limit:
            if not limit.isdigit() or int(limit) < 1:
                raise ExecutorConfigError(f"{MAX_CONCURRENT_ENV}={limit!r}: must be a whole number ≥ 1")
            config = {"max_concurrent": int(limit), **config}
        config.setdefault("start_method", {"forkserver": {"preload_modules": PRELOAD}})
    elif ":" in name:
        base = _named(name)
    else:
        raise ExecutorConfigError(f"{EXECUTOR_ENV}={name!r}: use in_process, multiprocess or package.module:attribute")
    return base.configured(config, name=base.name) if config else base

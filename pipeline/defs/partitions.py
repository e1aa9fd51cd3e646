"""Partitions: evaluation × data vintage.

* ``evaluation`` — dynamic keys: the evaluation ids of the spec files (``*.yaml``) in the evaluations folder,
  registered by the landing sensor (every spec of the folder, on each tick) and by every run started from
  Python or the command line (:func:`register_partition`), so a spec from any folder can be evaluated in a
  long-lived process and adding a spec file needs no code reload;
* ``vintage`` — dynamic keys registered by the landing sensor (or ``som demo``/``som evaluate``) as
  deliveries arrive.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import yaml

from som_reference import asset
from som_reference.strict_yaml import load_yaml

VINTAGES = dg.DynamicPartitionsDefinition(name="vintage")
EVALUATIONS = dg.DynamicPartitionsDefinition(name="evaluation")


def evaluations_dir() -> Path:
    return Path(os.environ.get("SOM_EVALUATIONS_DIR", "") or asset("evaluations"))


def evaluation_specs(folder: Path | None = None) -> dict[str, Path]:
    """Evaluation id → spec file, for every readable spec in the folder (unreadable files are skipped)."""
    folder = folder or evaluations_dir()
    out: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            doc = load_yaml(path)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("evaluation"), str):
            out[doc["evaluation"]] = path
    return out


def evaluation_partitions() -> dg.MultiPartitionsDefinition:
    """evaluation × vintage, both dynamic."""
    return dg.MultiPartitionsDefinition({"evaluation": EVALUATIONS, "vintage": VINTAGES})


def register_partition(instance: dg.DagsterInstance, evaluation: str, vintage: str) -> dg.MultiPartitionKey:
    """Register ``evaluation`` and ``vintage`` as partition keys (when new) and return their partition key."""
    for definition, key in ((EVALUATIONS, evaluation), (VINTAGES, vintage)):
        if not instance.has_dynamic_partition(definition.name, key):
            instance.add_dynamic_partitions(definition.name, [key])
    return dg.MultiPartitionKey({"evaluation": evaluation, "vintage": vintage})


def partition_parts(context) -> tuple[str, str]:
    """(evaluation, vintage) of the current run's partition."""
    key = context.partition_key
    dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else dict(
        zip(("evaluation", "vintage"), str(key).split("|"), strict=False))
    return dims["evaluation"], dims["vintage"]

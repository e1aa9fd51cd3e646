"""Partitions: evaluation × data vintage.

* ``evaluation`` — static keys read from the evaluation spec files (``*.yaml``) in the evaluations folder
  when the code location loads, so adding a spec file adds an evaluation without code changes (reload the
  code location in the UI);
* ``vintage`` — dynamic keys registered by the landing sensor (or ``som demo``) as deliveries arrive.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import yaml

from som_reference import asset
from som_reference.strict_yaml import load_yaml

VINTAGES = dg.DynamicPartitionsDefinition(name="vintage")


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


def evaluation_partitions(folder: Path | None = None) -> dg.MultiPartitionsDefinition:
    keys = sorted(evaluation_specs(folder)) or ["none"]
    return dg.MultiPartitionsDefinition({"evaluation": dg.StaticPartitionsDefinition(keys), "vintage": VINTAGES})


def partition_parts(context) -> tuple[str, str]:
    """(evaluation, vintage) of the current run's partition."""
    key = context.partition_key
    dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else dict(
        zip(("evaluation", "vintage"), str(key).split("|")))
    return dims["evaluation"], dims["vintage"]

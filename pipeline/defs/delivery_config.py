"""Which delivery folder a run evaluates: the one that triggered it, or the vintage's current one.

The landing sensor and the schedule put the folder and its fingerprint into the run config of the
``delivery`` asset (:class:`DeliveryConfig`) and into the run's tags (``som/delivery``, ``som/fingerprint``,
``som/supersedes`` for a corrected delivery). The asset evaluates exactly that folder and refuses to run
when its content no longer matches the fingerprint (or the data hash, when given). Without config (a UI
materialisation or a backfill) an explicit folder (``SomSettings.delivery``/``SOM_DELIVERY``, used by
``som evaluate``) wins, else the vintage's current delivery by the rule in :mod:`pipeline.landing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from pipeline.landing import LandedDelivery, deliveries_of, fingerprint_of, inspect_delivery
from pipeline.registers.files import read_manifest

TAG_DELIVERY, TAG_FINGERPRINT, TAG_SUPERSEDES, TAG_DATA_HASH = (
    "som/delivery", "som/fingerprint", "som/supersedes", "som/data_hash")


class DeliveryConfig(dg.Config):
    """Run config of the ``delivery`` asset (all optional; empty = find the vintage's current delivery)."""

    folder: str = Field(default="", description="The delivery folder this run evaluates.")
    fingerprint: str = Field(default="", description="Its fingerprint when the run was requested; the run refuses another.")
    data_hash: str = Field(default="", description="Its data hash (sha256) when known; the run refuses another.")
    supersedes: str = Field(default="", description="Fingerprint of the delivery of the same vintage this one corrects.")


class DeliveryChanged(ValueError):
    """The delivery folder named in the run config is gone, incomplete or has other content than requested."""


@dataclass(frozen=True)
class ChosenDelivery:
    folder: Path
    fingerprint: str
    chosen_by: str        # "run config", "explicit folder" or "newest of vintage"
    supersedes: str = ""  # fingerprint of the delivery it corrects ("" if none)
    note: str = ""        # why this folder, when there was a choice


def delivery_run_config(delivery: LandedDelivery, *, data_hash: str = "", supersedes: str = "") -> dict:
    """The run config that pins a run to ``delivery``."""
    config = {"folder": str(delivery.folder), "fingerprint": delivery.fingerprint, "data_hash": data_hash,
              "supersedes": supersedes}
    return {"ops": {"delivery": {"config": config}}}


def delivery_tags(delivery: LandedDelivery, *, data_hash: str = "", supersedes: str = "") -> dict[str, str]:
    """The run tags naming ``delivery`` (and the fingerprint it supersedes)."""
    tags = {TAG_DELIVERY: delivery.folder.name, TAG_FINGERPRINT: delivery.fingerprint}
    if data_hash:
        tags[TAG_DATA_HASH] = data_hash
    if supersedes:
        tags[TAG_SUPERSEDES] = supersedes
    return tags


def choose_delivery(config: DeliveryConfig, vintage: str, *, landing: Path, explicit: str = "") -> ChosenDelivery:
    """The folder this run evaluates (see the module docstring); raises when it cannot be used."""
    if config.folder:
        landed = inspect_delivery(Path(config.folder))
        if not landed.complete:
            raise DeliveryChanged(f"the delivery that triggered this run is no longer complete: {landed.reason}")
        if landed.vintage != vintage:
            raise DeliveryChanged(f"delivery {landed.folder.name} has vintage {landed.vintage!r}, "
                                  f"not the partition's {vintage!r}")
        if config.fingerprint and landed.fingerprint != config.fingerprint:
            raise DeliveryChanged(
                f"delivery {landed.folder.name} changed after the run was requested (fingerprint {config.fingerprint}, "
                f"now {landed.fingerprint}); the sensor requests a new run for the new content")
        return ChosenDelivery(landed.folder, landed.fingerprint, "run config", config.supersedes)
    if explicit:
        folder = Path(explicit)
        return ChosenDelivery(folder, fingerprint_of(read_manifest(folder))[0], "explicit folder")
    found = deliveries_of(landing, vintage)
    if not found:
        raise ValueError(f"no complete delivery with vintage {vintage!r} in the landing folder {landing}")
    current = found[-1]
    note, supersedes = "", ""
    if len(found) > 1:
        supersedes = found[-2].fingerprint
        note = (f"{len(found)} complete deliveries of vintage {vintage} ({', '.join(d.folder.name for d in found)}); "
                f"chose {current.folder.name}: the newest by completion time (newest file modification), then by "
                f"folder name; it supersedes {found[-2].folder.name}")
    return ChosenDelivery(current.folder, current.fingerprint, "newest of vintage", supersedes, note)

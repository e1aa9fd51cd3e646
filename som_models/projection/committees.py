"""The default municipal committee (udvalg) of each consequence item, used when a document gives none.

Reference data in ``assets/udvalg/default_committees.yaml``: ``items.<item>.kommune`` maps committee → share of
the item's kommune price (shares ≥ 0 adding up to 1), each line with its ``status`` and ``unit``
(:mod:`som_reference.values`); ``committees`` names the committees. Which committee pays is decided by each
kommune's own styrelsesvedtægt, so the file holds the usual assignment and says so in every status.

:func:`default_split` gives the split the calculation frame applies when a document splits no kommune price by
committee and assigns no cost line to one: the document's own split, when it has one, replaces the default
entirely (no mixing). Items the file does not name, and kommune amounts that are not item prices (costs without
a committee, tax), stay ``unassigned``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from som_models.parameters.schema import ParameterError
from som_reference import asset
from som_reference.strict_yaml import load_yaml
from som_reference.values import ReferenceDataError, check_status_unit

DEFAULT_FILE = ("udvalg", "default_committees.yaml")


@dataclass(frozen=True)
class CommitteeMap:
    """Item → {committee: share of its kommune price}; ``names`` committee → description; ``status`` per item."""

    path: str
    names: Mapping[str, str]
    items: Mapping[str, Mapping[str, float]]
    status: Mapping[str, str]


def _load(path: Path) -> CommitteeMap:
    where = str(path)
    try:
        data = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"{where}: cannot be read ({exc})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("committees"), Mapping) \
            or not isinstance(data.get("items"), Mapping):
        raise ParameterError(f"{where}: expected a mapping with 'committees' and 'items'")
    names = {str(k): str(v) for k, v in data["committees"].items()}
    items: dict[str, dict[str, float]] = {}
    status: dict[str, str] = {}
    for item, entry in data["items"].items():
        at = f"{where}: items.{item}"
        try:
            check_status_unit(entry, at)
        except ReferenceDataError as exc:
            raise ParameterError(str(exc)) from None
        split = entry.get("kommune")
        if not isinstance(split, Mapping) or not split:
            raise ParameterError(f"{at}.kommune: expected {{committee: share, …}}")
        shares: dict[str, float] = {}
        for committee, share in split.items():
            if committee not in names:
                raise ParameterError(f"{at}.kommune: unknown committee {committee!r} (known: {', '.join(names)})")
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ParameterError(f"{at}.kommune.{committee}: a share between 0 and 1 (got {share!r})")
            shares[str(committee)] = float(share)
        if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
            raise ParameterError(f"{at}.kommune: shares add up to {sum(shares.values()):g}, not 1")
        items[str(item)] = shares
        status[str(item)] = str(entry["status"])
    return CommitteeMap(where, names, items, status)


@lru_cache(maxsize=8)
def load_committee_map(path: str | None = None) -> CommitteeMap:
    """The mapping in ``path`` (default ``assets/udvalg/default_committees.yaml``); ParameterError naming the file
    and entry when it is malformed."""
    return _load(Path(path) if path is not None else asset(*DEFAULT_FILE))


def default_split(kommune_items: Iterable[str], *, path: str | None = None
                  ) -> tuple[dict[str, dict[str, float]], str | None]:
    """For the items with a kommune price: their default committee split, and a note naming the file and the
    items it assigned (None when it assigned none)."""
    cmap = load_committee_map(path)
    split = {item: dict(cmap.items[item]) for item in kommune_items if item in cmap.items}
    if not split:
        return {}, None
    assigned = ", ".join(f"{item} → {'/'.join(s)}" for item, s in split.items())
    statuses = sorted({cmap.status[item].split()[0] for item in split})
    return split, (f"kommune split by committee with the default mapping {Path(cmap.path).name} "
                   f"({'/'.join(statuses)}; the document gives none): {assigned}")

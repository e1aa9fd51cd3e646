"""The default udvalg ledger: which administration of each payer an item's flows belong to, as reference data.

``assets/udvalg/default_committees.yaml``: ``udvalg.<payer>`` names the udvalg (committees of the kommune,
sectors of the region and the state) with a description; ``items.<item>.<payer>`` maps udvalg → share of what
the item carries for that payer (shares ≥ 0 adding up to 1), each item with its ``status`` and ``unit``
(:mod:`som_reference.values`). Which committee pays is decided by each kommune's own styrelsesvedtægt, so the file
holds the usual assignment and says so in every status. :mod:`som_models.projection.ledger` applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from som_models.parameters.schema import PAYERS, ParameterError, ParameterSet
from som_reference import asset
from som_reference.strict_yaml import load_yaml
from som_reference.values import ReferenceDataError, check_status_unit

DEFAULT_FILE = ("udvalg", "default_committees.yaml")


@dataclass(frozen=True)
class CommitteeMap:
    """Item → payer → {udvalg: share}; ``names`` payer → {udvalg: description}; ``status`` per item."""

    path: str
    names: Mapping[str, Mapping[str, str]]
    items: Mapping[str, Mapping[str, Mapping[str, float]]]
    status: Mapping[str, str]


def _shares(split: Any, at: str, known: Mapping[str, str]) -> dict[str, float]:
    if not isinstance(split, Mapping) or not split:
        raise ParameterError(f"{at}: expected {{udvalg: share, …}}")
    shares: dict[str, float] = {}
    for name, share in split.items():
        if name not in known:
            raise ParameterError(f"{at}: unknown udvalg {name!r} (known: {', '.join(known)})")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ParameterError(f"{at}.{name}: a share between 0 and 1 (got {share!r})")
        shares[str(name)] = float(share)
    if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
        raise ParameterError(f"{at}: shares add up to {sum(shares.values()):g}, not 1")
    return shares


def _load(path: Path) -> CommitteeMap:
    where = str(path)
    try:
        data = load_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"{where}: cannot be read ({exc})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("udvalg"), Mapping) \
            or not isinstance(data.get("items"), Mapping):
        raise ParameterError(f"{where}: expected a mapping with 'udvalg' and 'items'")
    names: dict[str, dict[str, str]] = {}
    for payer, entries in data["udvalg"].items():
        if payer not in PAYERS or not isinstance(entries, Mapping):
            raise ParameterError(f"{where}: udvalg.{payer}: expected a payer ({', '.join(PAYERS)}) with "
                                 "{udvalg: description}")
        names[str(payer)] = {str(k): str(v) for k, v in entries.items()}
    items: dict[str, dict[str, dict[str, float]]] = {}
    status: dict[str, str] = {}
    for item, entry in data["items"].items():
        at = f"{where}: items.{item}"
        try:
            check_status_unit(entry, at)
        except ReferenceDataError as exc:
            raise ParameterError(str(exc)) from None
        unknown = set(entry) - {*PAYERS, "unit", "status", "source"}
        if unknown:
            raise ParameterError(f"{at}: unknown key(s) {', '.join(sorted(unknown))} (payers: {', '.join(PAYERS)})")
        by_payer = {p: _shares(entry[p], f"{at}.{p}", names.get(p, {})) for p in PAYERS if p in entry}
        if not by_payer:
            raise ParameterError(f"{at}: map the item for at least one payer ({', '.join(PAYERS)})")
        items[str(item)] = by_payer
        status[str(item)] = str(entry["status"])
    return CommitteeMap(where, names, items, status)


@lru_cache(maxsize=8)
def load_committee_map(path: str | None = None) -> CommitteeMap:
    """The mapping in ``path`` (default ``assets/udvalg/default_committees.yaml``); ParameterError naming the file
    and entry when it is malformed."""
    return _load(Path(path) if path is not None else asset(*DEFAULT_FILE))


#: the account of a payer's flows that no udvalg is named for (cost lines without a committee, unmapped items, …)
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class UdvalgMap:
    """The udvalg of each (item, payer) for one calculation document, resolved (precedence in
    :func:`resolve_udvalg`): ``shares`` item → payer → {udvalg: share}; ``origin`` item → payer → where the entry
    came from (``document price split`` / ``document udvalg.items`` / ``default (<status>)``); ``names`` payer →
    {udvalg: description} of the default file; ``default`` whether the default mapping was used."""

    shares: Mapping[str, Mapping[str, Mapping[str, float]]]
    origin: Mapping[str, Mapping[str, str]]
    names: Mapping[str, Mapping[str, str]]
    default: bool
    notes: tuple[str, ...]

    def of(self, item: str, payer: str) -> Mapping[str, float]:
        """{udvalg: share} of ``item`` for ``payer`` (empty: the item's flows of that payer stay unassigned)."""
        return self.shares.get(item, {}).get(payer, {})


def resolve_udvalg(params: ParameterSet, *, path: str | None = None) -> UdvalgMap:
    """The udvalg of each consequence item and payer of ``params``. Per (item, payer), the first that says one:

    1. the document's price split ``prices.<item>.<payer>: {udvalg: kr}`` (share = kr / the payer's price);
    2. the document's ``udvalg.items.<item>.<payer>: {udvalg: share}``;
    3. the default file (``path``, default ``assets/udvalg/default_committees.yaml``) unless the document says
       ``udvalg: {default: false}``;

    otherwise the item's flows of that payer are ``unassigned``. Raises ParameterError for a price split adding
    up to 0.
    """
    use_default = params.udvalg.default
    cmap = load_committee_map(path) if use_default else None
    shares: dict[str, dict[str, dict[str, float]]] = {}
    origin: dict[str, dict[str, str]] = {}
    from_default: list[str] = []
    for cons in params.consequences:
        item = cons.item
        spec = params.price_specs.get(item)
        for payer in PAYERS:
            split = spec.udvalg.get(payer) if spec is not None else None
            if split:
                total = sum(split.values())
                if total == 0:
                    raise ParameterError(f"prices.{item}.{payer}: an udvalg split must not add up to 0")
                shares.setdefault(item, {})[payer] = {k: v / total for k, v in split.items()}
                origin.setdefault(item, {})[payer] = "document price split"
            elif payer in params.udvalg.items.get(item, {}):
                shares.setdefault(item, {})[payer] = dict(params.udvalg.items[item][payer])
                origin.setdefault(item, {})[payer] = "document udvalg.items"
            elif cmap is not None and payer in cmap.items.get(item, {}):
                shares.setdefault(item, {})[payer] = dict(cmap.items[item][payer])
                origin.setdefault(item, {})[payer] = f"default ({cmap.status[item].split()[0]})"
                from_default.append(f"{item} {payer} → {'/'.join(cmap.items[item][payer])}")
    missing = [f"{item} {payer}" for item, payer in _flows(params) if payer not in shares.get(item, {})]
    notes = []
    if missing:
        notes.append(f"udvalg ledger: no udvalg for {', '.join(missing)} — booked as the payer's 'unassigned' (name "
                     "one in udvalg.items or the price split)")
    if from_default and cmap is not None:
        statuses = sorted({cmap.status[c.item].split()[0] for c in params.consequences if c.item in cmap.items})
        notes.append(f"udvalg ledger: default mapping {Path(cmap.path).name} ({'/'.join(statuses)}; the document "
                     f"states none for these): {', '.join(from_default)}")
    if not use_default:
        notes.append("udvalg ledger: default mapping switched off (udvalg.default: false); only the document's own "
                     "udvalg are used")
    return UdvalgMap(shares, origin, cmap.names if cmap is not None else {}, use_default, tuple(notes))


def _flows(params: ParameterSet) -> list[tuple[str, str]]:
    """The (item, payer) pairs that carry a flow in a projection of ``params``: a non-zero price, a refusion
    transfer (kommune and stat of a refunded item) or tax (a taxable item for each payer with a rate, and the
    stat with tilbageløb)."""
    pairs: dict[tuple[str, str], None] = {}
    for cons in params.consequences:
        for payer, kr in params.prices.get(cons.item, {}).items():
            if kr:
                pairs[(cons.item, payer)] = None
    for group in params.refusion:
        for item in group.items:
            pairs[(item, "kommune")] = None
            pairs[(item, "stat")] = None
    if params.tax is not None:
        for item in params.tax.taxable:
            for payer, rate in params.tax.rates.items():
                if rate:
                    pairs[(item, payer)] = None
            if params.tax.tilbageloeb:
                pairs[(item, "stat")] = None
    order = {c.item: n for n, c in enumerate(params.consequences)}
    return sorted(pairs, key=lambda ip: (order.get(ip[0], 0), PAYERS.index(ip[1])))

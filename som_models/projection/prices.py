"""Price-year conversion with a price index kept in ``assets/price_index`` (or given inline).

An amount quoted in year ``y`` is converted to price year ``P`` as ``amount · I(P) / I(y)``, where ``I(year)``
is the mean of the index's monthly values in that year (SØM converts prices to the chosen price year with the
net price index, shared/research/domain.md §1.2). Years with fewer than 12 monthly values are *partial*:
usable, and reported in ``PriceIndex.warnings_for``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from som_models.parameters.schema import ParameterError
from som_reference import assets_dir as packaged_assets_dir
from som_reference.strict_yaml import load_yaml
from som_reference.values import ReferenceDataError, check_status_unit

ASSETS_DIR = packaged_assets_dir()
DEFAULT_INDEX = "nettoprisindeks"


@dataclass(frozen=True)
class PriceIndex:
    """Annual index values ``values[year]``; ``partial`` years rest on fewer than 12 months."""

    name: str
    values: Mapping[int, float]
    partial: frozenset[int]
    source: str
    status: str

    def level(self, year: int, path: str = "price_year") -> float:
        if year not in self.values:
            have = f"{min(self.values)}–{max(self.values)}" if self.values else "none"
            raise ParameterError(f"{path}: the price index {self.name!r} has no value for {year} (years {have}); "
                                 "give price_index inline or quote the amount in a covered year")
        return self.values[year]

    def factor(self, from_year: int, to_year: int, path: str = "price_year") -> float:
        """``I(to_year) / I(from_year)`` (1 when the years are equal, without needing the index)."""
        if from_year == to_year:
            return 1.0
        return self.level(to_year, path) / self.level(from_year, path)

    def warnings_for(self, *years: int) -> list[str]:
        return [f"price index {self.name}: {y} is a partial year (fewer than 12 monthly values)"
                for y in sorted(set(years)) if y in self.partial]


def _from_monthly(name: str, monthly: Mapping[Any, list], source: str, status: str) -> PriceIndex:
    values, partial = {}, set()
    for year, months in monthly.items():
        got = [float(m) for m in months if m is not None]
        if not got:
            continue
        values[int(year)] = sum(got) / len(got)
        if len(got) < 12:
            partial.add(int(year))
    return PriceIndex(name, values, frozenset(partial), source, status)


def load_price_index(spec: Any = None, *, assets_dir: Path | None = None) -> PriceIndex:
    """The index named ``spec`` in ``assets/price_index`` (default ``nettoprisindeks``), or an inline index.

    ``spec`` may be ``None``, a name, or a sequence of ``(year, value)`` pairs / a mapping ``{year: value}``.
    """
    if spec is not None and not isinstance(spec, str):
        pairs = spec.items() if isinstance(spec, Mapping) else spec
        values = {int(y): float(v) for y, v in pairs}
        return PriceIndex("inline", values, frozenset(), "calculation document (price_index)", "as given in the document")
    name = spec or DEFAULT_INDEX
    folder = (assets_dir or ASSETS_DIR) / "price_index"
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ParameterError(f"price_index: unknown index {name!r} (known: {', '.join(known) or 'none'})")
    try:
        data = check_status_unit(load_yaml(path), str(path))
    except (ReferenceDataError, yaml.YAMLError) as exc:
        raise ParameterError(f"price_index: {exc}") from None
    if "monthly" in data:
        return _from_monthly(name, data["monthly"], str(data.get("source", "")), str(data.get("status", "")))
    return PriceIndex(name, {int(y): float(v) for y, v in data["annual"].items()}, frozenset(),
                      str(data.get("source", "")), str(data.get("status", "")))

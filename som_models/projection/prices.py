"""Price-year conversion with a price index kept in ``assets/price_index`` (or given inline).

An amount quoted in year ``y`` is converted to price year ``P`` as ``amount · I(P) / I(y)``, where ``I(year)``
is the mean of the index's twelve monthly values in that year (SØM converts prices to the chosen price year with
the net price index, shared/research/domain.md §1.2).

**Years beyond the data** (the stated rule). Let ``m*`` be the last month with a value ``v*`` and
``g = v* / v(m* − 12)`` the growth over the twelve months up to it. A month ``m`` after ``m*`` gets::

    v(m) = v* · g^((m − m*) / 12)

i.e. the latest twelve-month growth rate continued geometrically. A year with extrapolated months is marked
*extrapolated*; :meth:`PriceIndex.warnings_for` states the rule, the growth rate and the last month, and the
projection shows the warning (``som project`` and its JSON). The latest twelve-month rate is used rather than the
last full year's growth because the latter carries a past price shock forward (annual means of the net price index
rose 7.7 % from 2021 to 2022 and 4.0 % from 2022 to 2023, but 1.0 % in the twelve months to June 2024). A file may state
its own ``forecast: {year: growth}`` (with ``forecast_source``): those annual growth rates then replace ``g`` for
the years they name. Years *before* the first value are an error (no back-casting); years with months missing
at the start are *partial*: the mean of the months shown, with a warning.

Refresh the index from a Statistics Denmark StatBank CSV export with ``som refdata import-price-index FILE``
(:mod:`som_models.projection.statbank`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from som_models.parameters.schema import ParameterError
from som_reference import assets_dir as packaged_assets_dir
from som_reference.strict_yaml import load_yaml
from som_reference.values import ReferenceDataError, check_status_unit

ASSETS_DIR = packaged_assets_dir()
DEFAULT_INDEX = "nettoprisindeks"
#: the furthest year the rule extrapolates to, counted from the last month with a value
MAX_EXTRAPOLATION_YEARS = 10


@dataclass(frozen=True)
class PriceIndex:
    """Annual index values ``values[year]``; ``partial`` years rest on fewer than 12 months shown.

    ``last_month`` ``(year, month)`` is the last month with a value and ``growth`` the twelve-month growth factor
    up to it (``None`` for an index without monthly values: no extrapolation). ``forecast`` maps a year to a
    stated annual growth factor that replaces ``growth`` in that year.
    """

    name: str
    values: Mapping[int, float]
    partial: frozenset[int]
    source: str
    status: str
    last_month: tuple[int, int] | None = None
    growth: float | None = None
    last_value: float | None = None
    monthly: Mapping[tuple[int, int], float] = field(default_factory=dict)
    forecast: Mapping[int, float] = field(default_factory=dict)
    forecast_source: str = ""
    as_of: str = ""

    def _month_value(self, year: int, month: int) -> float:
        """A month's value, shown or extrapolated by the rule (module docstring)."""
        if (year, month) in self.monthly:
            return self.monthly[(year, month)]
        assert self.last_month is not None and self.growth is not None and self.last_value is not None
        y0, m0 = self.last_month
        value = self.last_value
        # step year by year so a stated forecast for a year applies to the months of that year
        cur_y, cur_m = y0, m0
        while (cur_y, cur_m) < (year, month):
            nxt_y, nxt_m = (cur_y, cur_m + 1) if cur_m < 12 else (cur_y + 1, 1)
            g = self.forecast.get(nxt_y, self.growth)
            value *= g ** (1 / 12)
            cur_y, cur_m = nxt_y, nxt_m
        return value

    def extrapolated(self, year: int) -> bool:
        """True when ``year`` has months after the last month with a value (so the rule supplies them)."""
        return self.last_month is not None and self.growth is not None and year >= self.last_month[0] \
            and not (year == self.last_month[0] and self.last_month[1] == 12)

    def level(self, year: int, path: str = "price_year") -> float:
        if self.extrapolated(year) and year - self.last_month[0] <= MAX_EXTRAPOLATION_YEARS:  # type: ignore[index]
            return sum(self._month_value(year, m) for m in range(1, 13)) / 12
        if year not in self.values:
            have = f"{min(self.values)}–{max(self.values)}" if self.values else "none"
            beyond = (f"; the rule extrapolates at most {MAX_EXTRAPOLATION_YEARS} years past the last month"
                      if self.last_month is not None and self.growth is not None and year > self.last_month[0] else "")
            raise ParameterError(f"{path}: the price index {self.name!r} has no value for {year} (years {have}{beyond}); "
                                 "give price_index inline, import a newer index (som refdata import-price-index) "
                                 "or quote the amount in a covered year")
        return self.values[year]

    def factor(self, from_year: int, to_year: int, path: str = "price_year") -> float:
        """``I(to_year) / I(from_year)`` (1 when the years are equal, without needing the index)."""
        if from_year == to_year:
            return 1.0
        return self.level(to_year, path) / self.level(from_year, path)

    def describe_rule(self, year: int) -> str:
        """The extrapolation behind ``year`` in words (for warnings and notes)."""
        assert self.last_month is not None and self.growth is not None
        y0, m0 = self.last_month
        stated = {y: g for y, g in self.forecast.items() if y0 <= y <= year}
        text = (f"no monthly values after {y0}-{m0:02d}; extrapolated with the twelve-month growth to {y0}-{m0:02d} "
                f"({100 * (self.growth - 1):+.2f} % a year) continued")
        if stated:
            text += "; stated forecast " + ", ".join(f"{y} {100 * (g - 1):+.2f} %" for y, g in sorted(stated.items())) \
                + (f" ({self.forecast_source})" if self.forecast_source else "")
        return text

    def warnings_for(self, *years: int) -> list[str]:
        out = []
        for y in sorted(set(years)):
            if self.extrapolated(y):
                out.append(f"price index {self.name}: {y} is extrapolated — {self.describe_rule(y)}; "
                           "refresh it with `som refdata import-price-index` when Statistics Denmark publishes the months")
            elif y in self.partial:
                out.append(f"price index {self.name}: {y} is a partial year (fewer than 12 monthly values)")
        return out


def _monthly_values(monthly: Mapping[Any, list], where: str) -> dict[tuple[int, int], float]:
    out: dict[tuple[int, int], float] = {}
    for year, months in monthly.items():
        if not isinstance(months, list) or len(months) != 12:
            raise ParameterError(f"{where}: monthly.{year}: expected a list of 12 values (null = not published)")
        for m, v in enumerate(months, start=1):
            if v is not None:
                out[(int(year), m)] = float(v)
    return out


def index_from_monthly(name: str, monthly: Mapping[Any, list], source: str, status: str, *, where: str = "price_index",
                       forecast: Mapping[Any, Any] | None = None, forecast_source: str = "", as_of: str = "") -> PriceIndex:
    """A :class:`PriceIndex` from ``{year: [12 monthly values or None]}`` with the extrapolation rule set up.

    A gap inside the series (a month missing between two shown months) is an error: the rule only fills the months
    after the last value."""
    months = _monthly_values(monthly, where)
    if not months:
        raise ParameterError(f"{where}: no monthly values")
    keys = sorted(months)
    first, last = keys[0], keys[-1]
    expected = (last[0] - first[0]) * 12 + last[1] - first[1] + 1
    if len(keys) != expected:
        have = set(keys)
        y, m = first
        while (y, m) in have:
            y, m = (y, m + 1) if m < 12 else (y + 1, 1)
        raise ParameterError(f"{where}: month {y}-{m:02d} is missing inside the series (values before and after it)")
    if any(v <= 0 for v in months.values()):
        raise ParameterError(f"{where}: index values must be positive")
    values: dict[int, float] = {}
    partial: set[int] = set()
    for year in range(first[0], last[0] + 1):
        got = [months[(year, m)] for m in range(1, 13) if (year, m) in months]
        values[year] = sum(got) / len(got)
        if len(got) < 12:
            partial.add(year)
    prev = (last[0] - 1, last[1])
    growth = months[last] / months[prev] if prev in months else None
    fc: dict[int, float] = {}
    for y, g in (forecast or {}).items():
        try:
            fc[int(y)] = 1.0 + float(g)
        except (TypeError, ValueError):
            raise ParameterError(f"{where}: forecast.{y}: expected an annual growth rate such as 0.02") from None
    if growth is not None and last[1] < 12:
        partial.discard(last[0])  # the rule fills the months after the last one: not partial, extrapolated
    return PriceIndex(name, values, frozenset(partial), source, status, last, growth, months[last], months, fc,
                      forecast_source, as_of)


def _index_path(spec: str, assets_dir: Path | None) -> Path:
    if spec.endswith((".yaml", ".yml")):
        return Path(spec)
    return (assets_dir or ASSETS_DIR) / "price_index" / f"{spec}.yaml"


def load_price_index(spec: Any = None, *, assets_dir: Path | None = None) -> PriceIndex:
    """The index named ``spec`` in ``assets/price_index`` (default ``nettoprisindeks``), a YAML file path, or an
    inline index.

    ``spec`` may be ``None``, a name, a path ending in ``.yaml``, or a sequence of ``(year, value)`` pairs / a
    mapping ``{year: value}`` (inline annual values: no extrapolation).
    """
    if spec is not None and not isinstance(spec, str):
        pairs = spec.items() if isinstance(spec, Mapping) else spec
        values = {int(y): float(v) for y, v in pairs}
        return PriceIndex("inline", values, frozenset(), "calculation document (price_index)", "as given in the document")
    name = spec or DEFAULT_INDEX
    path = _index_path(name, assets_dir)
    if not path.is_file():
        folder = path.parent
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ParameterError(f"price_index: unknown index {name!r} (known: {', '.join(known) or 'none'})")
    try:
        data = check_status_unit(load_yaml(path), str(path))
    except (ReferenceDataError, yaml.YAMLError) as exc:
        raise ParameterError(f"price_index: {exc}") from None
    label = path.stem
    if "monthly" in data:
        return index_from_monthly(label, data["monthly"], str(data.get("source", "")), str(data.get("status", "")),
                                  where=str(path), forecast=data.get("forecast"),
                                  forecast_source=str(data.get("forecast_source", "")), as_of=str(data.get("as_of", "")))
    return PriceIndex(label, {int(y): float(v) for y, v in data["annual"].items()}, frozenset(),
                      str(data.get("source", "")), str(data.get("status", "")), as_of=str(data.get("as_of", "")))

"""Evidence accounting across cumulative register vintages: which person-years informed a parameter version.

Register deliveries are cumulative: vintage 2023 repeats the person-years of vintage 2021 and adds the years
since. A normal–normal update (:func:`som_models.calibration.combine`) assumes the prior and the new estimate
are independent; updating a version that was itself fitted to vintage 2021 with vintage 2023 counts the
person-years up to 2021 twice (posterior precision ``1/σ_a² + 1/σ_2021² + 1/σ_2023²`` where the data carry
only ``1/σ_a² + 1/σ_2023²``), and the posterior SE comes out too small.

Every version records the evidence that informed it, an :class:`EvidenceWindow`: the evaluation (the
population it measures), the vintage, the data hash and the person-year window (first and last year, persons).
Two windows **overlap** when they come from the same evaluation and either share the data hash or have
intersecting year ranges ``[first, last]``. Evidence from another evaluation is taken to be other persons;
a window with unknown years (versions stored before evidence accounting) overlaps only through its data hash.

The **root prior** of an update (:func:`choose_root`) is the nearest ancestor of the version under test that
is not informed by evidence overlapping the new evidence. A version is informed by its own evidence and by
everything its ancestors were informed by (values it did not change are inherited), so along the lineage
``current → parent → … → seed`` the root is the parent of the oldest version whose own evidence overlaps; if
none overlaps, the root is the version under test itself (an ordinary sequential update). The update then
combines the root prior with the latest cumulative evidence, which contains the overlapping person-years
once. Evidence from other evaluations that entered between the root and the version under test is not
double-counted but also not carried into the updated values (their values are re-derived from the root).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

#: what an update does when its evidence overlaps evidence that informs the version under test (the spec's
#: ``overlap``): ``root`` — update the root prior (:func:`choose_root`); ``refuse`` — refuse the proposal
OVERLAP_POLICIES = ("root", "refuse")


@dataclass(frozen=True)
class EvidenceWindow:
    """The evidence an evaluation run brings: evaluation, vintage, data hash and person-year window."""

    evaluation: str
    vintage: str | None = None
    data_hash: str | None = None
    first_year: int | None = None
    last_year: int | None = None
    persons: int | None = None

    def __post_init__(self) -> None:
        if not self.evaluation:
            raise ValueError("an evidence window needs the evaluation it comes from")
        if (self.first_year is None) != (self.last_year is None):
            raise ValueError("an evidence window has both a first and a last year, or neither")
        if self.first_year is not None and self.last_year is not None and self.last_year < self.first_year:
            raise ValueError(f"evidence window: last year {self.last_year} is before first year {self.first_year}")
        if self.persons is not None and self.persons < 0:
            raise ValueError(f"evidence window: persons must be ≥ 0, got {self.persons}")

    @property
    def years_known(self) -> bool:
        return self.first_year is not None and self.last_year is not None

    def overlaps(self, other: EvidenceWindow) -> bool:
        """Whether both windows can hold the same person-years (module docstring)."""
        if self.evaluation != other.evaluation:
            return False
        if self.data_hash is not None and self.data_hash == other.data_hash:
            return True
        if not (self.years_known and other.years_known):
            return False
        return self.first_year <= other.last_year and other.first_year <= self.last_year  # type: ignore[operator]

    def describe(self) -> str:
        """One line: ``evaluation E, vintage V, years F–L`` (the persons are left out: see the store's display)."""
        parts = [f"evaluation {self.evaluation}"]
        if self.vintage:
            parts.append(f"vintage {self.vintage}")
        parts.append(f"years {self.first_year}–{self.last_year}" if self.years_known else "years unknown")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation": self.evaluation, "vintage": self.vintage, "data_hash": self.data_hash,
                "first_year": self.first_year, "last_year": self.last_year, "persons": self.persons}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> EvidenceWindow:
        def opt_int(key: str) -> int | None:
            value = doc.get(key)
            return None if value is None else int(value)

        return cls(evaluation=str(doc["evaluation"]), vintage=doc.get("vintage"), data_hash=doc.get("data_hash"),
                   first_year=opt_int("first_year"), last_year=opt_int("last_year"), persons=opt_int("persons"))


def panel_window(panel: pl.DataFrame | pl.LazyFrame, *, id_col: str = "person_id",
                 year_col: str = "year") -> dict[str, int | None]:
    """``{first_year, last_year, persons}`` of a person-year panel (lazy frames are scanned, not loaded whole)."""
    lazy = panel.lazy() if isinstance(panel, pl.DataFrame) else panel
    names = lazy.collect_schema().names()
    missing = [c for c in (id_col, year_col) if c not in names]
    if missing:
        raise ValueError(f"panel: column(s) {', '.join(missing)} not found; has {', '.join(names)}")
    row = lazy.select(pl.col(year_col).min().alias("first_year"), pl.col(year_col).max().alias("last_year"),
                      pl.col(id_col).n_unique().alias("persons")).collect().row(0, named=True)
    if row["first_year"] is None:
        raise ValueError("panel: no person-years (an empty panel informs nothing)")
    return {"first_year": int(row["first_year"]), "last_year": int(row["last_year"]), "persons": int(row["persons"])}


@dataclass(frozen=True)
class LineageStep:
    """One version on the way from the version under test to the seed, with its own evidence (None = none)."""

    version: int
    evidence: EvidenceWindow | None = None


@dataclass(frozen=True)
class RootChoice:
    """The prior of an update: ``version`` (the root), for an update of ``current`` with ``evidence``.

    ``overlapping`` lists the versions (newest first) whose own evidence overlaps the new evidence, with that
    evidence; empty when the root is ``current`` itself. ``same_data`` is true when ``current`` itself was
    informed by this evaluation's very data (a rerun on unchanged data). ``reason`` says which and why.
    """

    version: int
    current: int
    overlapping: tuple[LineageStep, ...]
    same_data: bool
    reason: str

    @property
    def is_current(self) -> bool:
        return self.version == self.current

    def to_dict(self) -> dict[str, Any]:
        return {"prior_version": self.version, "tested_version": self.current,
                "skipped_versions": [s.version for s in self.overlapping],
                "overlapping_evidence": [{"version": s.version, **(s.evidence.to_dict() if s.evidence else {})}
                                         for s in self.overlapping],
                "reason": self.reason}


def choose_root(lineage: Sequence[LineageStep], evidence: EvidenceWindow) -> RootChoice:
    """The root prior for updating ``lineage[0]`` (the version under test) with ``evidence``.

    ``lineage`` runs from the version under test to the seed (each step's parent follows it). Raises
    ``ValueError`` when even the oldest version given is informed by overlapping evidence.
    """
    if not lineage:
        raise ValueError("choose_root needs the lineage of the version under test")
    current = lineage[0].version
    overlapping = tuple(s for s in lineage if s.evidence is not None and s.evidence.overlaps(evidence))
    first = lineage[0].evidence
    same_data = (first is not None and first.evaluation == evidence.evaluation and first.data_hash is not None
                 and first.data_hash == evidence.data_hash)
    if not overlapping:
        return RootChoice(current, current, (), same_data,
                          f"prior: version {current} (the version under test; no version in its lineage is informed "
                          f"by evidence overlapping {evidence.describe()})")
    oldest = max(lineage.index(s) for s in overlapping)
    if oldest + 1 >= len(lineage):
        raise ValueError(f"version {lineage[oldest].version} has no ancestor free of evidence overlapping "
                         f"{evidence.describe()}; no root prior to update from")
    root = lineage[oldest + 1].version
    informed = "; ".join(f"version {s.version} by {s.evidence.describe()}" for s in overlapping if s.evidence)
    return RootChoice(root, current, overlapping, same_data,
                      f"prior: root version {root}, the nearest ancestor of version {current} not informed by evidence "
                      f"overlapping {evidence.describe()} ({informed}); updating a later version would count the same "
                      "person-years twice")

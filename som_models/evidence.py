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
once.

**Carried evidence.** Evidence that entered the lineage between the root (exclusive) and the version under
test (inclusive) without overlapping the new evidence — typically another evaluation, i.e. other persons — is
*carried*: the update's prior is the root prior successively updated with each such evidence, oldest first,
each with the update rule its version used (:func:`carry_evidence`), and only then combined with the new
evidence. With precision-weighted updates of a value ``a`` (SE ``σ_a``) by carried evidence ``b`` (``σ_b``)
and new evidence ``r`` (``σ_r``) the posterior precision is ``1/σ_a² + 1/σ_b² + 1/σ_r²`` — every
person-year once, none dropped. Which evidence is carried (:func:`choose_root`, ``RootChoice.carried``):

* an intermediate version whose own evidence overlaps the new evidence is skipped (``overlapping``): the new
  cumulative evidence holds its person-years;
* of the rest, newest first, an evidence that overlaps a newer carried one (an earlier cumulative vintage of
  another evaluation) is ``superseded``: the newer vintage holds its person-years;
* the root must be free of evidence overlapping the new *or* any carried evidence, so when a carried evidence
  overlaps evidence below the root, the root moves to that version's parent and the choice is repeated (it
  only moves towards the seed, so this ends).

A carried version's evidence is re-derived from the store alone (:func:`carry_evidence`): its run's stored
estimates and its run's spec (policy, ``prior_cv``, α, items, ``min_persons``, whether the success rate is
tested), with the values of a *descriptive* profile — whose contrast table is not stored as estimates — read
from the version's change record (``provenance.changes``). The re-derivation must reproduce that change record
(the same parameters updated, the same realised values, the version's values as recorded); otherwise, or when
the version was not proposed by an evaluation run (a seed, a version written by hand, a version stored before
evidence accounting without a window), the version's values **cannot be re-derived**: it is listed in
``RootChoice.not_carried`` with the reason, its values are not carried (the update falls back to the root
prior for what it changed), and the proposal's reason starts with a warning naming it, so the analyst sees it
before approving. This is a choice: refusing would leave no way to update such a lineage at all. The root is then
chosen again with that version excluded (``choose_root(..., exclude=...)``), so an earlier vintage of its
evaluation that it superseded is carried in its place (or stays in the root) rather than dropped with it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from som_models.parameters import ParameterSet

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

    Carried evidence (module docstring): ``carried`` lists the versions between the root (exclusive) and
    ``current`` (inclusive) whose evidence is carried into the prior, oldest first (the order it is applied in);
    ``superseded`` the versions whose evidence a newer carried evidence of the same evaluation contains (newest
    first); ``not_carried`` the versions between the root and ``current`` whose values cannot be re-derived from
    the store, with why (``(version, reason)``, oldest first). :func:`choose_root` proposes ``carried`` and lists
    versions without any evidence in ``not_carried``; :meth:`with_carry` records what the re-derivation
    (:func:`carry_evidence`) actually carried.
    """

    version: int
    current: int
    overlapping: tuple[LineageStep, ...]
    same_data: bool
    reason: str
    carried: tuple[LineageStep, ...] = ()
    superseded: tuple[LineageStep, ...] = ()
    not_carried: tuple[tuple[int, str], ...] = ()

    @property
    def is_current(self) -> bool:
        return self.version == self.current

    @property
    def warning(self) -> str:
        """The warning the proposal's reason starts with when some values cannot be re-derived ('' if none)."""
        if not self.not_carried:
            return ""
        which = "; ".join(f"version {v}: {why}" for v, why in self.not_carried)
        return (f"WARNING: the values of version(s) {', '.join(str(v) for v, _ in self.not_carried)} between the root "
                f"prior (version {self.version}) and the version under test cannot be re-derived from the store and "
                f"are not carried into the update's prior ({which})")

    def with_carry(self, carried: Sequence[int], not_carried: Sequence[tuple[int, str]]) -> RootChoice:
        """This choice after the re-derivation: ``carried`` the versions whose evidence was carried (a subset of
        :attr:`carried`), ``not_carried`` the further versions that could not be re-derived, with why; the reason
        names both (unchanged when nothing lies between the root and the version under test)."""
        proposed = {s.version: s for s in self.carried}
        unknown = sorted(set(carried) - set(proposed))
        if unknown:
            raise ValueError(f"versions {unknown} were not proposed for carrying (carried: {sorted(proposed)})")
        kept = tuple(proposed[v] for v in sorted(carried))
        failed = tuple(sorted({*self.not_carried, *((int(v), str(why)) for v, why in not_carried)}))
        return replace(self, carried=kept, not_carried=failed, reason=_reason(self.reason_base, kept, failed))

    @property
    def reason_base(self) -> str:
        """The reason without the sentences on carried evidence."""
        return self.reason.split(_CARRY_MARK, 1)[0]

    def to_dict(self) -> dict[str, Any]:
        def steps(items: Sequence[LineageStep]) -> list[dict[str, Any]]:
            return [{"version": s.version, **(s.evidence.to_dict() if s.evidence else {})} for s in items]

        return {"prior_version": self.version, "tested_version": self.current,
                "skipped_versions": [s.version for s in self.overlapping],
                "overlapping_evidence": steps(self.overlapping),
                "carried_versions": [s.version for s in self.carried],
                "carried_evidence": steps(self.carried),
                "superseded_versions": [s.version for s in self.superseded],
                "not_carried": [{"version": v, "reason": why} for v, why in self.not_carried],
                "reason": self.reason}


#: where the sentences on carried evidence start in a :class:`RootChoice` reason
_CARRY_MARK = "; carried into the prior: "


def _reason(base: str, carried: Sequence[LineageStep], not_carried: Sequence[tuple[int, str]]) -> str:
    """``base`` and, when anything lies between the root and the version under test, what was carried."""
    if not carried and not not_carried:
        return base
    parts = [f"version {s.version} ({s.evidence.describe()})" for s in carried if s.evidence] or ["nothing"]
    text = f"{base}{_CARRY_MARK}{'; '.join(parts)}"
    if carried:
        text += (", re-derived from the stored estimates of the run that proposed it, in lineage order, with the "
                 "update rule it used (evidence of other person-years is kept, not dropped)")
    if not_carried:
        text += f"; not carried (cannot be re-derived): {', '.join(f'version {v}' for v, _ in not_carried)}"
    return text


def _steps_before(lineage: Sequence[LineageStep], root: int) -> list[LineageStep]:
    """The steps newer than ``root`` (newest first)."""
    return list(lineage[:[s.version for s in lineage].index(root)])


def choose_root(lineage: Sequence[LineageStep], evidence: EvidenceWindow, *,
                exclude: Collection[int] = ()) -> RootChoice:
    """The root prior for updating ``lineage[0]`` (the version under test) with ``evidence``, and the evidence
    between the root and the version under test to carry into the prior (module docstring).

    ``lineage`` runs from the version under test to the seed (each step's parent follows it). ``exclude``: versions
    whose evidence cannot be re-derived (:func:`carry_evidence` failed on them): they are neither carried nor
    supersede older evidence of their evaluation, which is then carried in their place (or stays in the root).
    Raises ``ValueError`` when even the oldest version given is informed by overlapping evidence.
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
    combined: list[EvidenceWindow] = [evidence]
    carried: list[LineageStep] = []
    superseded: list[LineageStep] = []
    first_root: int | None = None
    while True:
        # the root: the parent of the oldest version informed by evidence overlapping the new or a carried one
        hits = [i for i, s in enumerate(lineage) if s.evidence is not None
                and any(s.evidence.overlaps(e) for e in combined)]
        oldest = max(hits)
        if oldest + 1 >= len(lineage):
            raise ValueError(f"version {lineage[oldest].version} has no ancestor free of evidence overlapping "
                             f"{evidence.describe()}" + (" or the evidence carried" if len(combined) > 1 else "")
                             + "; no root prior to update from")
        root = lineage[oldest + 1].version
        first_root = root if first_root is None else first_root
        carried, superseded, kept = [], [], [evidence]
        for s in _steps_before(lineage, root):  # newest first
            if s.evidence is None or s.evidence.overlaps(evidence) or s.version in exclude:
                continue
            if any(s.evidence.overlaps(e) for e in kept[1:]):
                superseded.append(s)
                continue
            carried.append(s)
            kept.append(s.evidence)
        if len(kept) == len(combined):
            break
        combined = kept
    between = _steps_before(lineage, root)
    without = tuple((s.version, "no recorded evidence (seeded, written by hand, or stored before evidence "
                                "accounting): its values cannot be re-derived")
                    for s in reversed(between) if s.evidence is None)
    informed = "; ".join(f"version {s.version} by {s.evidence.describe()}" for s in overlapping if s.evidence)
    base = (f"prior: root version {root}, the nearest ancestor of version {current} not informed by evidence "
            f"overlapping {evidence.describe()} ({informed}); updating a later version would count the same "
            "person-years twice")
    if root != first_root:
        moved = lineage[oldest]
        base = (f"prior: root version {root}, the nearest ancestor of version {current} informed neither by evidence "
                f"overlapping {evidence.describe()} ({informed}) nor by evidence that the evidence carried into the "
                f"prior repeats (version {moved.version} by {moved.evidence.describe() if moved.evidence else '—'}); "
                "updating a later version would count the same person-years twice")
    carried_steps = tuple(reversed(carried))
    return RootChoice(root, current, overlapping, same_data, _reason(base, carried_steps, without),
                      carried=carried_steps, superseded=tuple(superseded), not_carried=without)


# ------------------------------------------------------------------------------------------ carried evidence


class CarryError(ValueError):
    """A version's evidence cannot be re-derived from what the store holds (the message says why)."""


@dataclass(frozen=True, eq=False)
class CarryStep:
    """The evidence of one carried version as the store holds it.

    ``estimates``: the stored estimates of the run that proposed the version (the tidy estimates table);
    ``changes``: the version's change record (``provenance.changes`` of its content); ``content``: the version's
    content (its values must be those the record shows); ``rule``: the keyword arguments of
    :func:`som_models.calibration.propose` its run's spec set (``policy``, ``prior_cv``, ``alpha``, ``items``,
    ``min_persons``, ``update_success``).
    """

    version: int
    evidence: EvidenceWindow
    estimates: pl.DataFrame
    changes: tuple[Mapping[str, Any], ...]
    content: Mapping[str, Any]
    rule: Mapping[str, Any]


@dataclass(frozen=True)
class Carried:
    """The root prior with the carried evidence applied (``prior``), what was carried (``carried``: version, its
    evidence window and the parameters it updated, oldest first) and what could not be re-derived
    (``not_carried``: ``(version, reason)``)."""

    prior: ParameterSet
    carried: tuple[dict[str, Any], ...]
    not_carried: tuple[tuple[int, str], ...]


#: (year or 0, realised, realised SE, value the update gave) per updated value of a change record entry
_Record = dict[str, tuple[tuple[int, float, float, float], ...]]


def _evidence_record(changes: Sequence[Mapping[str, Any]]) -> _Record:
    """The realised evidence of a change record: parameter → its updated values (cohorts and kept entries left
    out: cohorts are replaced by the update of the version under test, not combined with a prior)."""
    out: _Record = {}
    try:
        for c in changes:
            name = str(c.get("parameter"))
            if "kept" in c or name == "cohorts":
                continue
            if name == "success_rate":
                out[name] = ((0, float(c["realised"]), float(c["realised_se"]), float(c["to"])),)
            elif "years" in c:
                out[name] = tuple((int(y["consequence_year"]), float(y["realised"]), float(y["realised_se"]),
                                   float(y["to"])) for y in c["years"])
                out[f"{name} (extrapolated)"] = tuple(
                    (int(y["consequence_year"]), float(y["extrapolated"]), float(y["extrapolated_se"]), float(y["to"]))
                    for y in c.get("extrapolated", ()))
            elif "course_years" in c:
                out[name] = tuple((int(y["course_year"]), float(y["realised"]), float(y["realised_se"]),
                                   float(y["to"])) for y in c["course_years"])
            else:
                raise CarryError(f"its change record has an entry for {name!r} that names no realised value")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, CarryError):
            raise
        raise CarryError(f"its change record cannot be read ({type(exc).__name__}: {exc})") from None
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _check_values(record: _Record, content: Mapping[str, Any]) -> None:
    """The version's values are those its change record gives (else it was edited by hand after its update)."""
    from som_models.parameters import parse_parameter_set

    params = parse_parameter_set(content)
    cons = {c.item: c for c in params.consequences}
    for name, values in record.items():
        for year, _, _, to in values:
            if name == "success_rate":
                have: float | None = params.success_rate.value
            elif name.endswith(".course"):
                course = cons.get(name.split(".")[1])
                have = course.course.units[year - 1] if course and course.course and year <= len(course.course.units) \
                    else None
            else:
                item = cons.get(name.split(".")[1].split(" ")[0])
                have = item.units[year - 1] if item and year <= len(item.units) else None
            if have is None or not _close(have, to):
                where = f"{name.split(' ')[0]}" + (f", year {year}" if year else "")
                raise CarryError(f"its value of {where} ({have}) is not the one its change record gives ({to}): "
                                 "it was not produced by that update (written or edited by hand)")


def _descriptive_evidence(record: _Record, changes: Sequence[Mapping[str, Any]]) -> pl.DataFrame | None:
    """The realised values of the *descriptive* profiles in a change record, as ``consequence_estimates`` (the
    descriptive contrast table is not stored with the run's estimates)."""
    rows = [{"item": str(c["parameter"]).split(".", 1)[1], "consequence_year": y, "estimate": r, "se": se,
             "kind": "descriptive"}
            for c in changes if c.get("kind") == "descriptive" and "years" in c and "kept" not in c
            for y, r, se, _ in record[str(c["parameter"])]]
    return pl.DataFrame(rows, schema={"item": pl.Utf8, "consequence_year": pl.Int64, "estimate": pl.Float64,
                                      "se": pl.Float64, "kind": pl.Utf8}) if rows else None


def _rederive(prior: ParameterSet, step: CarryStep) -> tuple[ParameterSet, tuple[str, ...]]:
    """``prior`` updated with ``step``'s evidence by the rule its version used, and the parameters it updated.
    Raises :class:`CarryError` when the store's estimates do not reproduce the version's change record."""
    from som_models.calibration import propose
    from som_models.parameters import parse_parameter_set

    recorded = _evidence_record(step.changes)
    _check_values(recorded, step.content)
    try:
        proposal = propose(prior, step.estimates, evidence_label=f"version {step.version}",
                           consequence_estimates=_descriptive_evidence(recorded, step.changes), **step.rule)
    except ValueError as exc:
        raise CarryError(f"its update cannot be repeated on the prior ({exc})") from None
    got = _evidence_record(proposal.changes)
    observed = {k for k in recorded if not k.endswith("(extrapolated)")}
    if {k for k in got if not k.endswith("(extrapolated)")} != observed:
        raise CarryError(f"its run's stored estimates update {sorted(k for k in got if '(' not in k) or 'nothing'}, "
                         f"its change record {sorted(observed) or 'nothing'}")
    for name in sorted(observed):
        mine = [(y, r, se) for y, r, se, _ in got[name]]
        theirs = [(y, r, se) for y, r, se, _ in recorded[name]]
        if len(mine) != len(theirs) or any(a[0] != b[0] or not _close(a[1], b[1]) or not _close(a[2], b[2])
                                           for a, b in zip(mine, theirs, strict=False)):
            raise CarryError(f"its run's stored estimates give realised {name} {mine}, its change record {theirs}")
    return parse_parameter_set(proposal.document), tuple(sorted(observed))


def carry_evidence(root: ParameterSet, steps: Sequence[CarryStep]) -> Carried:
    """The root prior ``root`` (a ParameterSet) successively updated with each step's evidence, oldest first
    (module docstring: carried evidence).

    Each step is re-derived with :func:`som_models.calibration.propose` — the version's run's stored estimates,
    the rule its run's spec set, the descriptive values its change record holds — on the prior so far; it must
    reproduce the version's change record (the same parameters updated with the same realised values and SEs)
    and the version's values must be those the record gives. A value the step did not update stays as the prior
    so far has it (the root's, unless an earlier carried evidence updated it); a year beyond the step's
    observed window is extrapolated from the prior so far by the step's rule, as its own update did from its
    prior. A step that fails a check is not carried and is returned in ``not_carried`` with why.
    """
    prior = root
    carried: list[dict[str, Any]] = []
    failed: list[tuple[int, str]] = []
    for step in steps:
        try:
            prior_next, parameters = _rederive(prior, step)
        except CarryError as exc:
            failed.append((step.version, str(exc)))
            continue
        prior = prior_next
        carried.append({"version": step.version, "evidence": step.evidence.to_dict(), "parameters": list(parameters)})
    return Carried(prior, tuple(carried), tuple(failed))

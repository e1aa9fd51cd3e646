"""The knowledge base: effect studies, target groups with consequence profiles, unit prices (``assets/``).

Files (read strictly — an unknown key is an error naming it):

* ``assets/knowledge/studies.yaml`` — effect studies per target group and outcome (design, evidence level 1–3,
  country, year, n, reported effect, follow-up, source, verification status); the effect on each metric is
  *computed* from the entry's ``data`` (:mod:`som_models.knowledge.effect_sizes`), never stored;
* ``assets/knowledge/target_groups/*.yaml`` — success measure and consequence profile per item (units per
  successful person by consequence year, SE, status, source), each item pointing at a unit price;
* ``assets/prices/unit_prices.yaml`` and ``assets/prices/tax_rates.yaml`` — unit prices by payer and marginal
  tax rates, with price year, status and source.

Metrics: ``difference`` (treated − control on the outcome's natural scale, ``unit``), ``log_odds_ratio``,
``log_risk_ratio``, ``cox_d`` (binary outcomes, standardised), ``hedges_g`` (continuous, standardised) and
``smd`` (a standardised mean difference as reported).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from som_models.knowledge import effect_sizes as es
from som_models.knowledge.comparability import MEASURES, IncomparableStudies, check_comparable, transfer_rule
from som_models.knowledge.meta import MetaResult, meta_analysis
from som_reference import assets_dir as packaged_assets_dir
from som_reference.strict_yaml import load_yaml
from som_reference.values import ReferenceDataError, check_status, check_status_unit

ASSETS_DIR = packaged_assets_dir()
METRICS = ("difference", "log_odds_ratio", "log_risk_ratio", "cox_d", "hedges_g", "smd")
DESIGNS = ("rct", "meta-analysis", "quasi-experimental", "before-after-control", "before-after")
STANDARDISED = ("cox_d", "hedges_g", "smd")
#: where a study comes from: the packaged reference data (published studies) or the agency's own approved register
#: evaluations (built from the parameter store, :mod:`pipeline.kb_evidence`)
REFERENCE = "reference"
AGENCY = "agency register evaluation"
ORIGINS = (REFERENCE, AGENCY)


class KnowledgeError(ValueError):
    """A knowledge-base file or query is invalid; the message names the entry and field."""


@dataclass(frozen=True)
class Effect:
    metric: str
    value: float
    se: float
    derived_from: str

    @property
    def variance(self) -> float:
        return self.se**2


@dataclass(frozen=True)
class EffectStudy:
    """One effect study of one outcome; ``effects`` maps metric → :class:`Effect` (computed from ``data``)."""

    id: str
    title: str
    url: str
    citation: str
    country: str
    year: int
    target_group: str
    population: str
    intervention: str
    comparison: str
    design: str
    evidence_level: int
    n_treatment: int | None
    n_control: int | None
    n_total: int | None
    outcome: str
    outcome_type: str
    outcome_definition: str
    unit: str
    desirable: str
    follow_up_months: float | None
    sample: str
    reported: str
    data: tuple[Mapping[str, Any], ...]
    status: str
    notes: str
    effects: Mapping[str, Effect] = field(default_factory=dict)
    #: :data:`REFERENCE` (a published study in ``assets/knowledge``) or :data:`AGENCY` (an approved evaluation)
    origin: str = REFERENCE
    #: for an agency study: evaluation, run id, data vintage and hash, parameter version, approval, earlier vintages
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: how the outcome is measured (:data:`som_models.knowledge.comparability.MEASURES`); "" = not stated
    measure: str = ""

    @property
    def own(self) -> bool:
        """True for the agency's own register evidence (an approved evaluation)."""
        return self.origin == AGENCY

    @property
    def n(self) -> int | None:
        if self.n_treatment is not None and self.n_control is not None:
            return self.n_treatment + self.n_control
        return self.n_total

    @property
    def standardised(self) -> Effect | None:
        """The standardised effect size: Cox d for binary outcomes, Hedges' g (or a reported SMD) for continuous."""
        for metric in (("cox_d",) if self.outcome_type == "binary" else ("hedges_g", "smd")):
            if metric in self.effects:
                return self.effects[metric]
        return None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in (
            "id", "title", "url", "citation", "country", "year", "target_group", "population", "intervention",
            "comparison", "design", "evidence_level", "n_treatment", "n_control", "n_total", "outcome", "outcome_type",
            "outcome_definition", "unit", "desirable", "follow_up_months", "sample", "reported", "status", "notes",
            "measure")}
        out["data"] = [dict(d) for d in self.data]
        out["effects"] = {m: {"value": e.value, "se": e.se, "derived_from": e.derived_from} for m, e in self.effects.items()}
        std = self.standardised
        out["standardised_effect"] = None if std is None else {"metric": std.metric, "value": std.value, "se": std.se}
        out["origin"] = self.origin
        out["provenance"] = copy.deepcopy(dict(self.provenance))
        return out


@dataclass(frozen=True)
class ConsequenceProfile:
    item: str
    units: tuple[float, ...]
    se: tuple[float, ...] | None
    price: str | None
    taxable: float | None
    status: str
    source: str
    unit: str = ""  # what ``units`` count, e.g. "nights at a §110 shelter per successful person and consequence year"
    income: str = "earned"  # for ``taxable`` items: earned (AM-bidrag applies) or transfer income


@dataclass(frozen=True)
class TargetGroup:
    id: str
    name: str
    description: str
    success_measure: Mapping[str, str]
    consequences: tuple[ConsequenceProfile, ...]


@dataclass(frozen=True)
class UnitPrice:
    id: str
    unit: str
    amounts: Mapping[str, float]
    price_year: int
    gross_for: str | None
    status: str
    source: str


@dataclass(frozen=True)
class Prior:
    """A prior for a success rate or effect from a pooled estimate.

    ``basis='predictive'`` (default): mean μ and SD ``√(τ² + se(μ)²)`` — the effect expected in a new setting;
    ``basis='mean'``: mean μ and ``se(μ)``. ``metric`` is the pooled metric (``success_rate`` after conversion).
    """

    metric: str
    value: float
    se: float
    basis: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "se": self.se, "basis": self.basis, "source": self.source}


def _pool_label(result: MetaResult, studies: Iterable[EffectStudy]) -> str:
    ids = [s.id for s in studies]
    return f"{result.method} random-effects pool of {result.k} stud{'y' if result.k == 1 else 'ies'} ({', '.join(ids)})"


@dataclass(frozen=True)
class PoolResult:
    outcome: str
    metric: str
    unit: str
    studies: tuple[EffectStudy, ...]
    excluded: tuple[tuple[str, str], ...]
    result: MetaResult
    prior: Prior
    success_rate_prior: Prior | None
    #: comparability and transferability warnings (:mod:`som_models.knowledge.comparability`)
    warnings: tuple[str, ...] = ()
    #: the transferability rule applied to ``success_rate_prior`` (None without one)
    transfer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"warnings": list(self.warnings), "transferability": self.transfer,
            "outcome": self.outcome, "metric": self.metric, "unit": self.unit,
            "studies": [{"id": s.id, "effect": s.effects[self.metric].value, "se": s.effects[self.metric].se,
                         "weight": w, "origin": s.origin}
                        for s, w in zip(self.studies, self.result.weights, strict=False)],
            "excluded": [{"id": i, "reason": r} for i, r in self.excluded],
            "meta_analysis": self.result.to_dict(), "prior": self.prior.to_dict(),
            "success_rate_prior": None if self.success_rate_prior is None else self.success_rate_prior.to_dict(),
        }


# ----------------------------------------------------------------------------------------------- parsing

def _check_keys(obj: Any, where: str, required: Iterable[str], optional: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise KnowledgeError(f"{where}: expected a mapping")
    allowed = set(required) | set(optional)
    for key in obj:
        if key not in allowed:
            raise KnowledgeError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in obj:
            raise KnowledgeError(f"{where}.{key}: required key missing")
    return obj


def _reference(entry: Mapping[str, Any], where: str) -> None:
    """A reference value states its status (verified / estimated / placeholder / …) and unit (:mod:`som_reference.values`)."""
    try:
        check_status_unit(entry, where)
    except ReferenceDataError as exc:
        raise KnowledgeError(str(exc)) from None


def parse_tax_rates(obj: Any, where: str = "tax_rates") -> Mapping[str, Any]:
    """Income-tax rates by payer, AM-bidrag (earned income only) and the tilbageløb share: shares in [0, 1], with
    status, unit, source and the date they apply from (``valid_from``); ``am_bidrag`` carries its own status."""
    d = _check_keys(obj, where, ("status", "unit", "source", "rates"),
                    ("tilbageloeb", "am_bidrag", "am_bidrag_status", "valid_from"))
    _reference(d, where)
    if "am_bidrag" in d:
        if not d.get("am_bidrag_status"):
            raise KnowledgeError(f"{where}.am_bidrag_status: am_bidrag states its own status and source")
        try:
            check_status(d["am_bidrag_status"], f"{where}.am_bidrag_status")
        except ReferenceDataError as exc:
            raise KnowledgeError(str(exc)) from None
    rates = _check_keys(d["rates"], f"{where}.rates", (), ("kommune", "region", "stat"))
    for key, value in (*((f"rates.{p}", r) for p, r in rates.items()), ("tilbageloeb", d.get("tilbageloeb", 0.0)),
                       ("am_bidrag", d.get("am_bidrag", 0.0))):
        if not 0 <= _number(value, f"{where}.{key}") <= 1:
            raise KnowledgeError(f"{where}.{key}: a tax rate is a share in [0, 1], got {value!r}")
    return d


def _ci(obj: Any, where: str) -> tuple[float, float]:
    """A confidence interval ``[low, high]`` of two numbers."""
    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise KnowledgeError(f"{where}: expected [low, high], got {obj!r}")
    return _number(obj[0], where), _number(obj[1], where)


def _number(obj: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(obj, bool) or not isinstance(obj, (int, float)) or not math.isfinite(obj) or (positive and obj <= 0):
        raise KnowledgeError(f"{where}: expected a {'positive ' if positive else ''}number, got {obj!r}")
    return float(obj)


def _effects_from(data: tuple[Mapping[str, Any], ...], where: str) -> dict[str, Effect]:
    """Effects on every metric the data allow; the first data entry giving a metric wins."""
    out: dict[str, Effect] = {}

    def put(metric: str, value: float, var: float, how: str) -> None:
        if metric not in out and var > 0:
            out[metric] = Effect(metric, float(value), math.sqrt(var), how)

    for k, d in enumerate(data):
        w = f"{where}.data[{k}]"
        kind = d.get("kind") if isinstance(d, Mapping) else None
        try:
            if kind == "estimate":
                _check_keys(d, w, ("kind", "metric", "value"), ("se", "ci", "level", "note"))
                metric, value = d["metric"], _number(d["value"], f"{w}.value")
                if ("se" in d) == ("ci" in d):
                    raise KnowledgeError(f"{w}: give either se or ci")
                level = float(d.get("level", 0.95))
                if metric in ("odds_ratio", "risk_ratio"):
                    if "ci" not in d:
                        raise KnowledgeError(f"{w}: a ratio needs its ci (the se is on the log scale)")
                    lo, hi = _ci(d["ci"], f"{w}.ci")
                    se = es.se_from_ci(math.log(lo), math.log(hi), level)
                    log_metric = "log_odds_ratio" if metric == "odds_ratio" else "log_risk_ratio"
                    put(log_metric, math.log(value), se**2, f"{metric} {value:g} [{lo:g}, {hi:g}]")
                    if metric == "odds_ratio":
                        put("cox_d", *es.cox_d(math.log(value), se**2), "Cox transform of the odds ratio")
                    continue
                if metric not in METRICS:
                    known = ", ".join(METRICS + ("odds_ratio", "risk_ratio"))
                    raise KnowledgeError(f"{w}.metric: {metric!r} is not one of {known}")
                se = _number(d["se"], f"{w}.se", positive=True) if "se" in d else es.se_from_ci(*_ci(d["ci"], f"{w}.ci"), level)
                put(metric, value, se**2, "as reported" + (" (se from the ci)" if "ci" in d else ""))
            elif kind in ("proportions", "two_by_two"):
                if kind == "proportions":
                    _check_keys(d, w, ("kind", "p_treatment", "n_treatment", "p_control", "n_control"), ())
                    n1 = _number(d["n_treatment"], f"{w}.n_treatment", positive=True)
                    n2 = _number(d["n_control"], f"{w}.n_control", positive=True)
                    a, c = d["p_treatment"] * n1, d["p_control"] * n2
                else:
                    _check_keys(d, w, ("kind", "events_treatment", "n_treatment", "events_control", "n_control"), ())
                    a = _number(d["events_treatment"], f"{w}.events_treatment")
                    n1 = _number(d["n_treatment"], f"{w}.n_treatment", positive=True)
                    c = _number(d["events_control"], f"{w}.events_control")
                    n2 = _number(d["n_control"], f"{w}.n_control", positive=True)
                lor = es.log_odds_ratio(a, n1, c, n2)
                put("log_odds_ratio", *lor, kind)
                put("cox_d", *es.cox_d(*lor), f"Cox transform of the log odds ratio ({kind})")
                put("log_risk_ratio", *es.log_risk_ratio(a, n1, c, n2), kind)
                put("difference", *es.risk_difference(a, n1, c, n2), f"risk difference ({kind})")
            elif kind == "means":
                _check_keys(d, w, ("kind", "mean_treatment", "sd_treatment", "n_treatment", "mean_control", "sd_control",
                                   "n_control"), ())
                vals = {key: _number(d[key], f"{w}.{key}") for key in d if key != "kind"}
                put("hedges_g", *es.hedges_g(vals["mean_treatment"], vals["sd_treatment"], vals["n_treatment"],
                                             vals["mean_control"], vals["sd_control"], vals["n_control"]), "means and SDs")
                var = vals["sd_treatment"] ** 2 / vals["n_treatment"] + vals["sd_control"] ** 2 / vals["n_control"]
                put("difference", vals["mean_treatment"] - vals["mean_control"], var, "difference of means")
            elif kind == "arm_means_ci":
                _check_keys(d, w, ("kind", "mean_treatment", "ci_treatment", "mean_control", "ci_control"), ("level",))
                level = float(d.get("level", 0.95))
                s1 = es.se_from_ci(*_ci(d["ci_treatment"], f"{w}.ci_treatment"), level)
                s2 = es.se_from_ci(*_ci(d["ci_control"], f"{w}.ci_control"), level)
                put("difference",
                    _number(d["mean_treatment"], f"{w}.mean_treatment") - _number(d["mean_control"], f"{w}.mean_control"),
                    s1**2 + s2**2, "difference of arm means; se from the arms' confidence intervals (independent arms)")
            else:
                raise KnowledgeError(f"{w}.kind: expected estimate, proportions, two_by_two, means or arm_means_ci, got {kind!r}")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, KnowledgeError):
                raise
            raise KnowledgeError(f"{w}: {exc}") from None
    return out


_STUDY_REQUIRED = ("id", "title", "url", "citation", "country", "year", "target_group", "intervention", "comparison",
                   "design", "evidence_level", "outcome", "outcome_type", "outcome_definition", "unit", "desirable",
                   "sample", "reported", "data", "status")
_STUDY_OPTIONAL = ("population", "n_treatment", "n_control", "n_total", "follow_up_months", "notes", "measure")


def parse_study(obj: Any, where: str = "study") -> EffectStudy:
    """Validate one study mapping (strict) and compute its effects."""
    d = _check_keys(obj, where, _STUDY_REQUIRED, _STUDY_OPTIONAL)
    where = f"studies[{d['id']}]"
    _reference(d, where)
    if d["design"] not in DESIGNS:
        raise KnowledgeError(f"{where}.design: {d['design']!r} is not one of {', '.join(DESIGNS)}")
    if d["evidence_level"] not in (1, 2, 3):
        raise KnowledgeError(f"{where}.evidence_level: expected 1, 2 or 3, got {d['evidence_level']!r}")
    if d["outcome_type"] not in ("binary", "continuous"):
        raise KnowledgeError(f"{where}.outcome_type: expected binary or continuous")
    if d["desirable"] not in ("higher", "lower"):
        raise KnowledgeError(f"{where}.desirable: expected higher or lower")
    if not isinstance(d["data"], list):
        raise KnowledgeError(f"{where}.data: expected a list")
    if d.get("measure") not in (None, "") and d["measure"] not in MEASURES:
        raise KnowledgeError(f"{where}.measure: expected one of {', '.join(MEASURES)}, got {d['measure']!r}")
    data = tuple(copy.deepcopy(x) for x in d["data"])
    ints = {}
    for key in ("n_treatment", "n_control", "n_total"):
        if d.get(key) is not None:
            ints[key] = int(_number(d[key], f"{where}.{key}", positive=True))
    return EffectStudy(
        id=str(d["id"]), title=str(d["title"]), url=str(d["url"]), citation=str(d["citation"]), country=str(d["country"]),
        year=int(d["year"]), target_group=str(d["target_group"]), population=str(d.get("population", "")),
        intervention=str(d["intervention"]), comparison=str(d["comparison"]), design=d["design"],
        evidence_level=int(d["evidence_level"]), n_treatment=ints.get("n_treatment"), n_control=ints.get("n_control"),
        n_total=ints.get("n_total"), outcome=str(d["outcome"]), outcome_type=d["outcome_type"],
        outcome_definition=str(d["outcome_definition"]), unit=str(d["unit"]), desirable=d["desirable"],
        follow_up_months=None if d.get("follow_up_months") is None else float(d["follow_up_months"]),
        sample=str(d["sample"]), reported=str(d["reported"]), data=data, status=str(d["status"]),
        notes=str(d.get("notes", "")), effects=_effects_from(data, where), measure=str(d.get("measure") or ""),
    )


def _parse_target_group(obj: Any, where: str) -> TargetGroup:
    d = _check_keys(obj, where, ("id", "name", "description", "success_measure", "consequences"), ())
    _check_keys(d["success_measure"], f"{where}.success_measure", ("name", "outcome", "rule"), ("description",))
    profiles = []
    for item, c in d["consequences"].items():
        w = f"{where}.consequences.{item}"
        _check_keys(c, w, ("units", "unit", "status", "source"), ("se", "price", "taxable", "income"))
        _reference(c, w)
        if c.get("income", "earned") not in ("earned", "transfer"):
            raise KnowledgeError(f"{w}.income: earned or transfer (got {c.get('income')!r})")
        if ("price" in c) == ("taxable" in c):
            raise KnowledgeError(f"{w}: give either a price (unit price id) or taxable (kroner of taxable income per unit)")
        units = tuple(_number(u, f"{w}.units") for u in c["units"])
        se = tuple(_number(s, f"{w}.se") for s in c["se"]) if c.get("se") is not None else None
        if se is not None and len(se) != len(units):
            raise KnowledgeError(f"{w}.se: expected {len(units)} values")
        profiles.append(ConsequenceProfile(item, units, se, c.get("price"),
                                           None if c.get("taxable") is None else _number(c["taxable"], f"{w}.taxable"),
                                           str(c["status"]), str(c["source"]), str(c["unit"]),
                                           str(c.get("income", "earned"))))
    return TargetGroup(str(d["id"]), str(d["name"]), str(d["description"]), dict(d["success_measure"]), tuple(profiles))


def _parse_price(pid: str, obj: Any) -> UnitPrice:
    w = f"unit_prices.{pid}"
    d = _check_keys(obj, w, ("unit", "price_year", "status", "source"), ("kommune", "region", "stat", "gross_for"))
    _reference(d, w)
    amounts = {p: _number(d[p], f"{w}.{p}") for p in ("kommune", "region", "stat") if p in d}
    if not amounts:
        raise KnowledgeError(f"{w}: needs an amount for at least one payer")
    gross_for = d.get("gross_for")
    if gross_for not in (None, "staircase", "expensive_cases"):
        raise KnowledgeError(f"{w}.gross_for: expected staircase or expensive_cases, got {gross_for!r}")
    if gross_for and "kommune" not in amounts:
        raise KnowledgeError(f"{w}.gross_for: a gross price for a refusion rule needs a kommune amount")
    return UnitPrice(pid, str(d["unit"]), amounts, int(d["price_year"]), gross_for, str(d["status"]), str(d["source"]))


# ----------------------------------------------------------------------------------------- the base

@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    studies: tuple[EffectStudy, ...]
    target_groups: Mapping[str, TargetGroup]
    prices: Mapping[str, UnitPrice]
    tax_rates: Mapping[str, Any]

    @classmethod
    def load(cls, assets_dir: Path | str | None = None) -> KnowledgeBase:
        root = Path(assets_dir) if assets_dir else ASSETS_DIR
        try:
            raw = load_yaml(root / "knowledge" / "studies.yaml") or {}
            studies = tuple(parse_study(s, f"studies[{k}]") for k, s in enumerate(raw.get("studies", [])))
            ids = [s.id for s in studies]
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise KnowledgeError(f"studies: duplicate id(s) {', '.join(sorted(dup))}")
            groups = {}
            for path in sorted((root / "knowledge" / "target_groups").glob("*.yaml")):
                tg = _parse_target_group(load_yaml(path), path.name)
                if tg.id != path.stem:
                    raise KnowledgeError(f"{path.name}: id {tg.id!r} does not match the file name")
                groups[tg.id] = tg
            price_doc = load_yaml(root / "prices" / "unit_prices.yaml") or {}
            prices = {pid: _parse_price(pid, p) for pid, p in price_doc.get("prices", {}).items()}
            tax_path = root / "prices" / "tax_rates.yaml"
            tax = parse_tax_rates(load_yaml(tax_path), tax_path.name) if tax_path.is_file() else {}
        except (OSError, yaml.YAMLError) as exc:
            raise KnowledgeError(f"knowledge base under {root}: {exc}") from None
        for tg in groups.values():
            for c in tg.consequences:
                if c.price is not None and c.price not in prices:
                    raise KnowledgeError(f"{tg.id}.consequences.{c.item}.price: unknown unit price {c.price!r}")
        return cls(studies, groups, prices, tax)

    def with_study(self, study: EffectStudy) -> KnowledgeBase:
        """A new knowledge base that also holds ``study`` (ids must stay unique; the files are not changed)."""
        return self.with_studies((study,))

    def with_studies(self, studies: Iterable[EffectStudy]) -> KnowledgeBase:
        """A new knowledge base that also holds ``studies`` — e.g. the agency's own approved evaluations — after the
        packaged ones (ids must stay unique; no file is changed)."""
        added = tuple(studies)
        ids = [s.id for s in (*self.studies, *added)]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise KnowledgeError(f"studies: duplicate id(s) {', '.join(dup)}")
        return KnowledgeBase((*self.studies, *added), self.target_groups, self.prices, self.tax_rates)

    # -- queries

    def study(self, study_id: str) -> EffectStudy:
        for s in self.studies:
            if s.id == study_id:
                return s
        raise KnowledgeError(f"no study {study_id!r} (known: {', '.join(s.id for s in self.studies)})")

    def target_group(self, tg: str) -> TargetGroup:
        if tg not in self.target_groups:
            raise KnowledgeError(f"no target group {tg!r} (known: {', '.join(sorted(self.target_groups))})")
        return self.target_groups[tg]

    def search(self, text: str = "", *, target_group: str | None = None, outcome: str | None = None,
               max_level: int | None = None, country: str | None = None,
               origin: str | None = None) -> list[EffectStudy]:
        """Studies matching every given filter; ``text`` matches id, title, intervention, population, outcome (any case);
        ``origin`` is :data:`REFERENCE` or :data:`AGENCY`."""
        if target_group is not None:
            self.target_group(target_group)
        if origin is not None and origin not in ORIGINS:
            raise KnowledgeError(f"origin must be one of {', '.join(ORIGINS)}, got {origin!r}")
        words = text.lower().split()
        out = []
        for s in self.studies:
            hay = " ".join((s.id, s.title, s.intervention, s.population, s.outcome, s.outcome_definition, s.country,
                            s.target_group, s.citation)).lower()
            if words and not all(w in hay for w in words):
                continue
            if target_group and s.target_group != target_group:
                continue
            if outcome and s.outcome != outcome:
                continue
            if max_level is not None and s.evidence_level > max_level:
                continue
            if country and s.country.lower() != country.lower():
                continue
            if origin is not None and s.origin != origin:
                continue
            out.append(s)
        return out

    def pool(self, *, outcome: str, target_group: str | None = None, metric: str | None = None,
             method: str = "REML", ids: Iterable[str] | None = None, max_level: int | None = None,
             baseline: float | None = None, basis: str = "predictive", level: float = 0.95,
             measure: str | None = None, allow_incomparable: bool = False) -> PoolResult:
        """Random-effects meta-analysis of the studies of one outcome, and the prior it implies.

        The pooled studies must measure the outcome comparably (same ``measure``, horizons within 1.5×;
        :func:`som_models.knowledge.comparability.check_comparable`): otherwise a :class:`KnowledgeError`, unless
        ``allow_incomparable`` (then a warning); ``measure`` keeps only the studies of that measure. A success-rate
        prior follows the transferability rule of :func:`som_models.knowledge.comparability.transfer_rule`.

        ``metric`` defaults to ``difference`` when every candidate has it, else the standardised metric. Studies
        without the metric, and all but the largest study of each ``sample``, are excluded (with the reason).
        With ``baseline`` (the control group's success share) a Cox-d or log-OR pool also yields a success-rate
        prior ``expit(logit(p0) + 1.65 d) − p0``; a ``difference`` pool of a share *is* a success-rate prior.
        """
        if basis not in ("predictive", "mean"):
            raise KnowledgeError(f"basis must be predictive or mean, got {basis!r}")
        if ids is not None:
            candidates = [self.study(i) for i in ids]
            wrong = [s.id for s in candidates if s.outcome != outcome]
            if wrong:
                raise KnowledgeError(f"study {', '.join(wrong)} is not about outcome {outcome!r}")
        else:
            candidates = self.search(target_group=target_group, outcome=outcome, max_level=max_level)
        if not candidates:
            raise KnowledgeError(f"no studies of outcome {outcome!r}"
                                 + (f" in target group {target_group!r}" if target_group else ""))
        excluded: list[tuple[str, str]] = []
        if measure is not None:
            if measure not in MEASURES:
                raise KnowledgeError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
            excluded += [(s.id, f"measure {s.measure or 'not stated'}, not {measure}") for s in candidates
                         if s.measure != measure]
            candidates = [s for s in candidates if s.measure == measure]
            if not candidates:
                raise KnowledgeError(f"no studies of outcome {outcome!r} with measure {measure!r}")
        if metric is None:
            with_effects = [s for s in candidates if s.effects]
            metric = "difference" if with_effects and all("difference" in s.effects for s in with_effects) else (
                "cox_d" if all(s.outcome_type == "binary" for s in with_effects) else "hedges_g")
        if metric not in METRICS:
            raise KnowledgeError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        usable = []
        for s in candidates:
            if metric not in s.effects:
                excluded.append((s.id,
                                 f"no {metric} (no standard error reported)" if not s.effects else f"no {metric} computable"))
            else:
                usable.append(s)
        chosen: dict[str, EffectStudy] = {}
        for s in sorted(usable, key=lambda s: (-(s.n or 0), s.id)):
            if s.sample in chosen:
                excluded.append((s.id, f"same sample as {chosen[s.sample].id} ({s.sample})"))
            else:
                chosen[s.sample] = s
        studies = tuple(sorted(chosen.values(), key=lambda s: s.id))
        if not studies:
            raise KnowledgeError(f"no study of outcome {outcome!r} has the metric {metric!r}")
        units = {s.unit for s in studies} if metric == "difference" else {metric}
        if len(units) > 1:
            raise KnowledgeError(f"the studies measure {outcome!r} in different units ({', '.join(sorted(units))}); "
                                 "pool a standardised metric instead (--metric cox_d or hedges_g)")
        try:
            warnings = check_comparable(studies, allow=allow_incomparable)
        except IncomparableStudies as exc:
            raise KnowledgeError(f"{outcome}: {exc}") from None
        result = meta_analysis([s.effects[metric].value for s in studies], [s.effects[metric].variance for s in studies],
                               method=method, level=level)
        label = _pool_label(result, studies)
        se = result.predictive_se if basis == "predictive" else result.se
        prior = Prior(metric, result.estimate, se, basis, label)
        sr = None
        transfer = None
        unit = units.pop()
        if (metric == "difference" and unit == "share") or (baseline is not None and metric in ("cox_d", "log_odds_ratio")):
            used, transfer = transfer_rule(studies)
            sr_result, sr_basis, sr_label = result, basis, label
            if len(used) < len(studies):  # rule 1: the Danish studies alone
                sr_result = meta_analysis([s.effects[metric].value for s in used],
                                          [s.effects[metric].variance for s in used], method=method, level=level)
                sr_label = _pool_label(sr_result, used)
            elif not any(s.country == "Denmark" or s.own for s in used):  # rule 2: predictive SD, whatever basis
                sr_basis = "predictive"
                warnings.append(transfer)
            sr_se = sr_result.predictive_se if sr_basis == "predictive" else sr_result.se
            if metric == "difference":
                sr = Prior("success_rate", sr_result.estimate, sr_se, sr_basis,
                           f"{sr_label}; a difference in shares is a net success rate; {transfer}")
            else:
                assert baseline is not None
                d, sd = ((sr_result.estimate, sr_se) if metric == "cox_d"
                         else (sr_result.estimate / es.COX_FACTOR, sr_se / es.COX_FACTOR))
                value, p_se = es.success_rate_from_d(d, sd, baseline)
                sr = Prior("success_rate", value, p_se, sr_basis,
                           f"{sr_label}; success rate = expit(logit({baseline:g}) + 1.65·d) − {baseline:g}; {transfer}")
        return PoolResult(outcome, metric, unit, studies, tuple(excluded), result, prior, sr, tuple(warnings), transfer)

    def calculation_template(self, target_group: str, *, intervention: str, start_year: int, participants: int,
                             cost_per_participant: float, success_rate: float, success_rate_se: float | None = None,
                             price_year: int = 2023, cohorts: int = 1, with_tax: bool = True) -> dict[str, Any]:
        """A calculation document (dict) for ``target_group`` from its consequence profile and unit prices.

        Costs are paid by the kommune in course year 1; prices keep their own price year (converted by the
        projection with the net price index); items valued by tax get a ``tax`` section with the placeholder
        rates of ``assets/prices/tax_rates.yaml``; gross prices (``gross_for``) get the matching refusion rule,
        with a stated assumption (52 prior weeks; a 1.5 million kr annual case expense) for the analyst to adjust.
        Consequence profiles are written as ``kind: descriptive``: the target groups hold SØM-style
        success-vs-non-success contrasts (``docs/concepts.md``).
        """
        tg = self.target_group(target_group)
        longest = max(len(c.units) for c in tg.consequences)
        doc: dict[str, Any] = {
            "intervention": intervention,
            "title": f"{intervention} for {tg.name} (built from the knowledge base — check every placeholder)",
            "target_group": tg.id, "start_year": start_year, "horizon_years": longest + cohorts + 1,
            "price_year": price_year, "course_years": 1,
            "cohorts": [{"year": start_year + k, "participants": participants} for k in range(cohorts)],
            "success_measure": dict(tg.success_measure),
            "success_rate": {"value": success_rate, **({"se": success_rate_se} if success_rate_se is not None else {}),
                             "source": "analyst's assumption (net of what happens anyway)"},
            "costs": [{"course_year": 1, "payer": "kommune", "amount": -abs(cost_per_participant)}],
            "consequences": {}, "prices": {}, "sources": {},
        }
        taxable, incomes = {}, {}
        gross_items: dict[str, list[str]] = {"staircase": [], "expensive_cases": []}
        for c in tg.consequences:
            doc["consequences"][c.item] = {"kind": "descriptive", "units": list(c.units), **({"se": list(c.se)} if c.se else {}),
                                           "source": f"{c.status}: {c.source}"}
            doc["sources"][f"consequences.{c.item}"] = {"status": c.status, "note": c.source}
            if c.price is not None:
                p = self.prices[c.price]
                doc["prices"][c.item] = {**p.amounts, "price_year": p.price_year, "status": p.status,
                                         "source": f"unit price {p.id}: {p.source}"}
                doc["sources"][f"prices.{c.item}"] = {"status": p.status, "note": f"assets/prices/unit_prices.yaml#{p.id}"}
                if p.gross_for:
                    gross_items[p.gross_for].append(c.item)
            else:
                taxable[c.item] = c.taxable
                incomes[c.item] = c.income
        if taxable and with_tax:
            rates = self.tax_rates.get("rates", {})
            doc["tax"] = {"rates": {k: float(v) for k, v in rates.items()},
                          "am_bidrag": float(self.tax_rates.get("am_bidrag", 0.0)),
                          "taxable": {item: {"kroner": kr, "income": incomes[item]} for item, kr in taxable.items()},
                          "tilbageloeb": float(self.tax_rates.get("tilbageloeb", 0.0)),
                          "source": f"assets/prices/tax_rates.yaml ({self.tax_rates.get('status', 'status not stated')})"}
        refusion = {}
        if gross_items["staircase"]:
            refusion["staircase"] = {"items": gross_items["staircase"], "weeks_before": 52,
                                     "source": "assumption: long-term recipients (more than 52 cumulative weeks) — adjust"}
        if gross_items["expensive_cases"]:
            refusion["expensive_cases"] = {"items": gross_items["expensive_cases"], "case_expense": 1_500_000,
                                           "rule": "barnets_lov_198" if "boern" in tg.id else "serviceloven_176",
                                           "source": "assumption: annual gross case expense without success — adjust"}
        if refusion:
            doc["refusion"] = refusion
        if taxable and not with_tax:
            raise KnowledgeError(f"target group {tg.id} has items valued only by tax ({', '.join(taxable)}); keep with_tax")
        return doc


def study_from_evaluation(*, id: str, target_group: str, outcome: str, estimate: float, se: float, year: int,
                          design: str, evidence_level: int, n_treatment: int | None, n_control: int | None,
                          source: str, unit: str = "share", desirable: str = "higher",
                          outcome_type: str = "binary", follow_up_months: float | None = None,
                          intervention: str = "", country: str = "Denmark", outcome_definition: str | None = None,
                          sample: str | None = None, notes: str = "",
                          provenance: Mapping[str, Any] | None = None) -> EffectStudy:
    """A finished evaluation as a knowledge-base study (DESIGN §4: "a finished evaluation becomes a new study").

    ``estimate``/``se`` are the realised effect on the outcome's natural scale (treated − comparison, e.g. the
    realised net success rate); it is stored as a ``difference`` estimate and pooled like any other study. The study
    is marked as the agency's own register evidence (``origin`` :data:`AGENCY`) with its ``provenance``; ``sample``
    names the persons it rests on (studies of one sample are pooled once, :meth:`KnowledgeBase.pool`).
    """
    study = parse_study({
        "id": id, "title": f"Register evaluation of {intervention or target_group}: {outcome}", "url": source,
        "citation": source, "country": country, "year": year, "target_group": target_group,
        "intervention": intervention or "evaluated intervention", "comparison": "register comparison group",
        "design": design, "evidence_level": evidence_level, "outcome": outcome, "outcome_type": outcome_type,
        "outcome_definition": outcome_definition or outcome, "unit": unit, "desirable": desirable,
        "sample": sample or id, "reported": f"{estimate:.4g} (se {se:.3g})", "status": "verified (computed by this pipeline)",
        "data": [{"kind": "estimate", "metric": "difference", "value": float(estimate), "se": float(se)}],
        **({"n_treatment": n_treatment} if n_treatment else {}), **({"n_control": n_control} if n_control else {}),
        **({"follow_up_months": follow_up_months} if follow_up_months is not None else {}),
        **({"notes": notes} if notes else {}),
    }, f"studies[{id}]")
    return replace(study, origin=AGENCY, provenance=copy.deepcopy(dict(provenance or {})))

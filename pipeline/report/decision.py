"""The decision tables of the report: who pays and who gains per payer and per udvalg, the cross-subsidy by year,
projected vs realised per udvalg, and the version diff — all from the projection document (the JSON ``som
project --json`` writes: :func:`projection_document`) and the stored parameter documents.

The udvalg tables are generic: :func:`udvalg_rows` is the one function that turns a projection document into
rows. It groups the document's ``committees`` rows (``year``, ``committee``, ``amount``, ``discounted`` and any
further text keys such as ``payer``) by their text keys, so committees of any payer appear without code changes,
and it adds every ``<metric>_by_committee`` / ``<metric>_by_udvalg`` mapping the document holds as a column
(``npv_by_committee`` is checked against the rows instead) and, with a Monte Carlo, ``prob_break_even`` of each
committee named there.

Formulas: NPV of an udvalg = Σ_t discounted[t, udvalg]; payback year = the first year in which the cumulative
discounted net is ≥ 0 after a negative flow (the rule :mod:`som_models.projection.frame` applies to payers);
role = "invests" when the NPV is negative, else "gains".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.disclosure import SUPPRESSED, is_small

PAYERS = ("kommune", "region", "stat")
KEYS = (*PAYERS, "total")
_NUMERIC = {"year", "amount", "discounted"}
#: parameter paths whose values are counts of persons (small ones are suppressed in the diff)
_COUNT_LEAVES = ("participants", "persons", "n_treated", "n_control")


def projection_document(result: Any, break_even: Any, mc: Any | None = None, *, source: str = "") -> dict[str, Any]:
    """The JSON document ``som project --json`` writes, from a projection ``result``
    (:func:`som_models.projection.project`), its ``break_even`` and optionally a Monte Carlo ``mc``: the
    projection's ``to_dict()`` with ``source``, ``discounting``, ``break_even`` and ``monte_carlo``."""
    out = result.to_dict()
    out["source"] = source
    out["discounting"] = result.discounting
    out["break_even"] = break_even.to_dict()
    if mc is not None:
        out["monte_carlo"] = mc.to_dict()
    return out


def payback_year(years: Sequence[int], discounted: Sequence[float]) -> int | None:
    """The payback year of a yearly discounted series, by the calculation frame's own rule (the first year the
    cumulative discounted net is ≥ 0 after a negative flow; :func:`som_models.projection.frame._payback`)."""
    from som_models.projection.frame import _payback

    return _payback(list(years), list(discounted))


def payer_rows(docs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per payer (and the total): NPV under each version in ``docs`` (``npv_<version>``), and for the last version
    its payback year, whether it has a year of net outlay (``invested``), P(NPV ≥ 0) (None: no Monte Carlo;
    "no stake" is ``no_stake``) and role (gains / pays / none: no flows)."""
    if not docs:
        return []
    last = list(docs.values())[-1]
    mc = last.get("monte_carlo") or {}
    rows = []
    for k in KEYS:
        row: dict[str, Any] = {"payer": k, **{f"npv_{name}": d["npv"][k] for name, d in docs.items()}}
        row["npv"] = last["npv"][k]
        row["payback"] = last["payback_year"] if k == "total" else last.get("payback_by_payer", {}).get(k)
        flows = k == "total" or any(r["payer"] == k and r["amount"] for r in last["rows"])
        yearly: dict[int, float] = defaultdict(float)
        for r in last["rows"]:
            if k in ("total", r["payer"]):
                yearly[r["year"]] += r["discounted"]
        row["invested"] = any(v < 0 for v in yearly.values())
        row["role"] = "none" if not flows else ("gains" if last["npv"][k] >= 0 else "pays")
        pbe = (mc.get("prob_break_even") or {}).get(k, "absent")
        row["p_break_even"] = None if pbe == "absent" else ("no_stake" if pbe is None else pbe)
        rows.append(row)
    return rows


def _group_key(row: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in row.items() if k not in _NUMERIC and isinstance(v, str)))


def udvalg_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per udvalg (committee) of the projection document ``doc`` (module docstring): ``udvalg``, ``payer``
    (the rows' ``payer``, else ``kommune``), ``npv``, ``nominal``, ``payback``, ``role``, ``by_year`` (year →
    discounted) and the extra metrics; [] when the document splits nothing by udvalg."""
    rows = doc.get("committees") or []
    years = [c["year"] for c in doc.get("cumulative", [])] or sorted({r["year"] for r in rows})
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = _group_key(r)
        g = groups.setdefault(key, {**dict(key), "by_year": defaultdict(float), "nominal": 0.0})
        g["by_year"][r["year"]] += r["discounted"]
        g["nominal"] += r["amount"]
    metrics = {k: v for k, v in doc.items() if isinstance(v, Mapping) and k != "npv_by_committee"
               and (k.endswith("_by_committee") or k.endswith("_by_udvalg"))}
    pbe = ((doc.get("monte_carlo") or {}).get("prob_break_even") or {})
    out = []
    for g in groups.values():
        name = g.pop("committee", None) or g.pop("udvalg", "?")
        by_year = dict(g.pop("by_year"))
        npv = sum(by_year.values())
        row: dict[str, Any] = {"udvalg": name, "payer": g.pop("payer", "kommune"), **g, "npv": npv,
                               "payback": payback_year(years, [by_year.get(y, 0.0) for y in years]),
                               "role": "invests" if npv < 0 else "gains",
                               "invested": any(v < 0 for v in by_year.values()), "by_year": by_year}
        for metric, mapping in metrics.items():
            value = mapping.get(name)
            if value is not None and not isinstance(value, Mapping | list):
                row[metric.rsplit("_by_", 1)[0]] = value
        if name in pbe:
            row["p_break_even"] = "no_stake" if pbe[name] is None else pbe[name]
        out.append(row)
    return sorted(out, key=lambda r: (r["payer"], r["npv"]))


def udvalg_extra_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns of :func:`udvalg_rows` beyond the standard ones (new keys the projection document carries)."""
    standard = {"udvalg", "payer", "npv", "nominal", "payback", "role", "invested", "by_year", "p_break_even"}
    return sorted({k for r in rows for k in r if k not in standard})


def cross_subsidy(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The year × udvalg table of discounted net amounts from :func:`udvalg_rows`: (udvalg names, one row per year
    with ``year``, each udvalg's amount and ``total``)."""
    names = [r["udvalg"] if r["payer"] == "kommune" else f"{r['payer']}: {r['udvalg']}" for r in rows]
    years = sorted({y for r in rows for y in r["by_year"]})
    table = []
    for y in years:
        row: dict[str, Any] = {"year": y}
        for name, r in zip(names, rows, strict=True):
            row[name] = r["by_year"].get(y, 0.0)
        row["total"] = sum(row[n] for n in names)
        table.append(row)
    return names, table


def udvalg_compare(docs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per udvalg, its NPV under each version (``npv_<version>``, None where the version has no such udvalg) and
    the change from the first to the last version: projected (evaluated) vs realised (re-projected on the
    evidence)."""
    per = {name: {(r["payer"], r["udvalg"]): r["npv"] for r in udvalg_rows(d)} for name, d in docs.items()}
    keys = list(dict.fromkeys(k for p in per.values() for k in p))
    names = list(docs)
    out = []
    for payer, udvalg in keys:
        row: dict[str, Any] = {"payer": payer, "udvalg": udvalg}
        for n in names:
            row[f"npv_{n}"] = per[n].get((payer, udvalg))
        a, b = row[f"npv_{names[0]}"], row[f"npv_{names[-1]}"]
        row["change"] = None if a is None or b is None else b - a
        out.append(row)
    return out


def _top(path: str) -> str:
    """The parameter a diff path belongs to: ``consequences.x.units[3]`` → ``consequences.x``."""
    head = path.split("[", 1)[0]
    parts = head.split(".")
    return ".".join(parts[:2]) if parts[0] in ("consequences", "prices") else parts[0]


def version_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, min_cell: int) -> dict[str, Any]:
    """:func:`pipeline.store.diff.diff_documents` of two parameter documents, with per-parameter counts; values of
    person counts below ``min_cell`` are withheld (``suppressed (<min_cell)``)."""
    from pipeline.store.diff import diff_documents

    if before is None or after is None:
        return {"changes": [], "by_parameter": []}
    mark = SUPPRESSED.format(n=min_cell)

    def shown(path: str, value: Any) -> Any:
        leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
        if leaf in _COUNT_LEAVES and isinstance(value, int | float) and is_small(value, min_cell) and value != 0:
            return mark
        return value

    changes = [{**c, "from": shown(c["path"], c["from"]), "to": shown(c["path"], c["to"]), "parameter": _top(c["path"])}
               for c in diff_documents(before, after)]
    counts: dict[str, int] = defaultdict(int)
    for c in changes:
        counts[c["parameter"]] += 1
    return {"changes": changes, "by_parameter": [{"parameter": k, "changes": n} for k, n in counts.items()]}

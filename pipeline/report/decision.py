"""The decision tables of the report: who pays and who gains per payer and per udvalg, the cross-subsidy by year,
projected vs realised per udvalg, and the version diff — all from the projection document (the JSON ``som
project --json`` writes: :func:`som_models.projection.document.projection_document`) and the stored parameter
documents.

The udvalg tables read the projection document's udvalg ledger (``udvalg``: every payer's accounts, their yearly
net and NPV; :mod:`som_models.projection.ledger`): :func:`udvalg_rows` is the one function that turns it into
rows, with the Monte Carlo's P(NPV ≥ 0) per account and the break-even per account beside them.

Formulas (the ledger's): NPV of an udvalg = Σ_t discounted[t, udvalg]; payback year = the first year in which
the cumulative discounted net is ≥ 0 after a negative flow (the rule :mod:`som_models.projection.frame` applies
to payers); role = "invests" when the NPV is negative, "gains" when positive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.disclosure import SUPPRESSED, is_small

PAYERS = ("kommune", "region", "stat")
KEYS = (*PAYERS, "total")
#: parameter paths whose values are counts of persons (small ones are suppressed in the diff)
_COUNT_LEAVES = ("participants", "persons", "n_treated", "n_control")


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


def udvalg_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per account of the projection document's udvalg ledger (``doc["udvalg"]``,
    :meth:`som_models.projection.ledger.Ledger.to_dict`; every payer's udvalg): ``udvalg``, ``payer``, ``label``,
    ``npv``, ``nominal`` (undiscounted sum), ``payback``, ``role`` (invests / gains / neutral), ``invested`` (a year
    of net outlay), ``by_year`` (year → discounted), ``p_break_even`` (the Monte Carlo's P(NPV ≥ 0) of the account,
    ``no_stake`` when it had no flow in any draw; absent without draws), ``break_even_success_rate`` and
    ``break_even_cost`` (``doc["break_even"]["udvalg"]``, the short text of each). [] without a ledger."""
    book = doc.get("udvalg") or {}
    accounts = book.get("accounts") or []
    by_year = book.get("by_year_discounted") or []
    nominal = book.get("by_year") or []
    mc = doc.get("monte_carlo") or {}
    mc_udvalg, no_stake = mc.get("udvalg") or {}, set(mc.get("udvalg_no_stake") or ())
    be = (doc.get("break_even") or {}).get("udvalg") or {}
    out = []
    for acct in accounts:
        key = acct["label"]
        years = {r["year"]: r.get(key, 0.0) for r in by_year}
        name = acct["udvalg"] if acct["payer"] == "kommune" else f"{acct['payer']}: {acct['udvalg']}"
        row: dict[str, Any] = {"udvalg": acct["udvalg"], "payer": acct["payer"], "label": key, "name": name,
                               "npv": acct["npv"],
                               "nominal": sum(r.get(key, 0.0) for r in nominal), "payback": acct["payback_year"],
                               "role": acct["role"], "invested": any(v < 0 for v in years.values()),
                               "by_year": years}
        if key in mc_udvalg:
            row["p_break_even"] = mc_udvalg[key]["prob_break_even"]
        elif key in no_stake:
            row["p_break_even"] = "no_stake"
        if key in be:
            row["break_even_success_rate"] = _break_even_value(be[key]["success_rate"])
            row["break_even_cost"] = _break_even_value(be[key]["cost_per_participant"])
        out.append(row)
    return sorted(out, key=lambda r: (PAYERS.index(r["payer"]) if r["payer"] in PAYERS else 9, r["npv"]))


def _break_even_value(entry: Mapping[str, Any]) -> float | str:
    """A break-even entry (:meth:`som_models.projection.breakeven.BreakEven.to_dict`): its value when it breaks
    even, else its status (``no_effect``, ``no_cost``, ``falls_with_success`` …)."""
    value = entry.get("value")
    return float(value) if isinstance(value, int | float) else str(entry.get("status", ""))


def udvalg_extra_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns of :func:`udvalg_rows` beyond the standard ones (new keys the projection document carries)."""
    standard = {"udvalg", "payer", "label", "name", "npv", "nominal", "payback", "role", "invested", "by_year", "p_break_even",
                "break_even_success_rate", "break_even_cost"}
    return sorted({k for r in rows for k in r if k not in standard})


def cross_subsidy(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The year × udvalg table of discounted net amounts from :func:`udvalg_rows`: (udvalg names, one row per year
    with ``year``, each udvalg's amount and ``total``)."""
    names = [r["name"] for r in rows]
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

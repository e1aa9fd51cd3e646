"""Charts for the audit report, rendered with matplotlib (Agg) to inline SVG markup (vector, no network, no images).

Every chart states its units on both axes (kr, persons, nights or weeks per person …); labels come from the
caller (the report's message catalogue, :mod:`pipeline.report.i18n`). Text stays text in the SVG
(``svg.fonttype = none``), so it is searchable and scales with the page. Element ids are prefixed per chart so that
several charts can be inlined in one HTML document without clashing clip paths; namespace declarations and the RDF
metadata block are dropped (the HTML parser knows SVG), so a report names no URL.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_COUNTER = itertools.count(1)
_ID = re.compile(r'\bid="([^"]+)"')
COLORS = {"before": "#d94801", "after": "#08519c"}


def _svg(fig, label: str) -> str:
    """``fig`` as an ``<svg>`` element (XML prolog and DOCTYPE dropped; ids unique in the document), with
    ``role="img"`` and ``label`` as its accessible name."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "som-report"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # inline SVG in HTML needs no namespace declarations or RDF metadata (and so names no URL at all)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    prefix = f"c{next(_COUNTER)}-"
    ids = set(_ID.findall(text))
    text = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) in ids else m.group(0), text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"' if m.group(1) in ids else m.group(0), text)
    safe = label.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return text.replace("<svg ", f'<svg role="img" aria-label="{safe}" class="chart" ', 1)


def effect_path_chart(title: str, unit: str, path: list[dict], t: Callable[..., str]) -> str:
    """Assumed vs realised effect by year since start, with the realised confidence band.

    ``path`` rows: event_time, assumed, realised, ci_low, ci_high (suppressed rows already removed); ``unit`` is
    the y axis label (e.g. "nights per treated person per year").
    """
    fig, ax = plt.subplots(figsize=(6.2, 3.2))
    e = [p["event_time"] for p in path]
    ax.fill_between(e, [p["ci_low"] for p in path], [p["ci_high"] for p in path], color="#9ecae1", alpha=0.6,
                    label=t("lg_realised_ci"))
    ax.plot(e, [p["realised"] for p in path], "o-", color="#08519c", label=t("lg_realised"))
    ax.plot(e, [p["assumed"] for p in path], "s--", color="#d94801", label=t("lg_assumed"))
    ax.axhline(0, color="#666", lw=0.8)
    ax.set_xlabel(t("ax_years_since"))
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(e)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, title)


def cumulative_chart(series: Mapping[str, tuple[list[int], list[float]]], payback: Mapping[str, int | None],
                     t: Callable[..., str]) -> str:
    """Cumulative discounted net (all payers, million kr) by year for each parameter version, with payback years."""
    fig, ax = plt.subplots(figsize=(6.2, 3.2))
    for name, (years, values) in series.items():
        ax.plot(years, [v / 1e6 for v in values], "o-", ms=3, color=COLORS.get(name),
                label=t("lg_payback", name=t(f"v_{name}"), year=payback.get(name) or t("none_within")))
    ax.axhline(0, color="#666", lw=0.8)
    ax.set_xlabel(t("ax_year"))
    ax.set_ylabel(t("ax_cum"))
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, t("ax_cum"))


def history_chart(title: str, unit: str, rows: list[dict], t: Callable[..., str]) -> str:
    """Realised estimate (with interval) and the assumption, for every evaluation run / data vintage."""
    fig, ax = plt.subplots(figsize=(6.2, 2.8))
    x = list(range(len(rows)))
    labels = [f"{r['vintage']}\n{r['label']}" for r in rows]
    real = [r["realised"] for r in rows]
    lo = [r["realised"] - r["ci_low"] for r in rows]
    hi = [r["ci_high"] - r["realised"] for r in rows]
    ax.errorbar(x, real, yerr=[lo, hi], fmt="o", color="#08519c", capsize=4, label=t("lg_realised_ci"))
    ax.plot(x, [r["assumed"] for r in rows], "s", color="#d94801", label=t("lg_assumed"))
    ax.axhline(0, color="#666", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_xlabel(t("ax_vintage"))
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, title)


def monte_carlo_chart(draws: Mapping[str, object], prob: Mapping[str, float | None], t: Callable[..., str]) -> str:
    """Histogram of the total NPV (million kr) over Monte Carlo draws for each parameter version, with P(NPV ≥ 0)."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.2, 3.0))
    values = [np.asarray(v) / 1e6 for v in draws.values()]
    bins = np.histogram_bin_edges(np.concatenate(values), bins=50)
    for name, arr in zip(draws, values, strict=False):
        p = prob[name]
        ax.hist(arr, bins=bins, alpha=0.5, color=COLORS.get(name),
                label=t("lg_pbe", name=t(f"v_{name}"), p=t("no_stake") if p is None else f"{p:.0%}"))
    ax.axvline(0, color="#333", lw=1)
    ax.set_xlabel(t("ax_npv_total"))
    ax.set_ylabel(t("ax_draws"))
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, t("ax_npv_total"))

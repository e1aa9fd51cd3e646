"""Charts for the audit report, rendered with matplotlib (Agg) to inline PNG data URIs (no network)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def effect_path_chart(title: str, unit: str, path: list[dict]) -> str:
    """Assumed vs realised effect by year since start, with the realised confidence band.

    ``path`` rows: event_time, assumed, realised, ci_low, ci_high (suppressed rows already removed).
    """
    fig, ax = plt.subplots(figsize=(6.2, 3.2))
    e = [p["event_time"] for p in path]
    ax.fill_between(e, [p["ci_low"] for p in path], [p["ci_high"] for p in path], color="#9ecae1", alpha=0.6,
                    label="realised 95 % CI")
    ax.plot(e, [p["realised"] for p in path], "o-", color="#08519c", label="realised")
    ax.plot(e, [p["assumed"] for p in path], "s--", color="#d94801", label="assumed")
    ax.axhline(0, color="#666", lw=0.8)
    ax.set_xlabel("years since start")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(e)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def cumulative_chart(series: dict[str, tuple[list[int], list[float]]], payback: dict[str, int | None]) -> str:
    """Cumulative discounted net (all payers) by year for each parameter version, with payback years."""
    fig, ax = plt.subplots(figsize=(6.2, 3.2))
    colors = {"before": "#d94801", "after": "#08519c"}
    for name, (years, values) in series.items():
        ax.plot(years, [v / 1e6 for v in values], "o-", ms=3, color=colors.get(name),
                label=f"{name} (payback {payback.get(name) or 'none'})")
    ax.axhline(0, color="#666", lw=0.8)
    ax.set_xlabel("year")
    ax.set_ylabel("cumulative discounted net, mio. kr")
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def history_chart(title: str, rows: list[dict]) -> str:
    """Realised estimate (with interval) and the assumption, for every evaluation run / data vintage."""
    fig, ax = plt.subplots(figsize=(6.2, 2.8))
    x = list(range(len(rows)))
    labels = [f"{r['vintage']}\n{r['label']}" for r in rows]
    real = [r["realised"] for r in rows]
    lo = [r["realised"] - r["ci_low"] for r in rows]
    hi = [r["ci_high"] - r["realised"] for r in rows]
    ax.errorbar(x, real, yerr=[lo, hi], fmt="o", color="#08519c", capsize=4, label="realised (95 % CI)")
    ax.plot(x, [r["assumed"] for r in rows], "s", color="#d94801", label="assumed")
    ax.axhline(0, color="#666", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def monte_carlo_chart(draws: dict[str, object], prob: dict[str, float]) -> str:
    """Histogram of the total NPV over Monte Carlo draws for each parameter version, with P(NPV ≥ 0)."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.2, 3.0))
    colors = {"before": "#d94801", "after": "#08519c"}
    values = [np.asarray(v) / 1e6 for v in draws.values()]
    bins = np.histogram_bin_edges(np.concatenate(values), bins=50)
    for name, arr in zip(draws, values, strict=False):
        ax.hist(arr, bins=bins, alpha=0.5, color=colors.get(name), label=f"{name}: P(NPV ≥ 0) = {prob[name]:.0%}")
    ax.axvline(0, color="#333", lw=1)
    ax.set_xlabel("NPV total, mio. kr")
    ax.set_ylabel("draws")
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)

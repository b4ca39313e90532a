"""Plots of a report as inline SVG text (matplotlib, Agg backend; no network, no files)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .content import ReportContent

PROFILE_STAGES = ("conditioning", "network total (all steps)", "codec decode (VAE)", "vocoder")


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def metric_bars(content: ReportContent) -> list[tuple[str, str]]:
    """(title, svg) per metric: its value per system, spread as error bars."""
    out = []
    for name in dict.fromkeys(r.metric for r in content.rows):
        rows = [r for r in content.rows if r.metric == name]
        fig, ax = plt.subplots(figsize=(4.5, 2.6))
        errors = [float(r.spread.split(" ")[0][1:]) if r.spread else 0.0 for r in rows]
        bars = {"yerr": errors, "capsize": 4} if any(errors) else {}
        ax.bar([r.system for r in rows], [r.value for r in rows], color="#4c72b0", **bars)
        ax.set_ylabel(f"{rows[0].unit} ({rows[0].arrow} better)")
        ax.set_title(f"{name} per system", fontsize=10)
        out.append((f"{name} per system", _svg(fig)))
    return out


def item_distributions(content: ReportContent) -> list[tuple[str, str]]:
    """(title, svg) per per-item metric: the distribution over items per system (box + points)."""
    out = []
    names = sorted({n for s in content.systems for scores in s.results.item_scores.values() for n in scores})
    for name in names:
        data = [[sc[name] for sc in s.results.item_scores.values() if name in sc] for s in content.systems]
        labels = [s.label for s in content.systems]
        fig, ax = plt.subplots(figsize=(4.5, 2.6))
        ax.boxplot(data, tick_labels=labels)
        for i, values in enumerate(data, start=1):
            ax.plot([i] * len(values), values, ".", alpha=0.4, color="#dd8452")
        unit = next((m.unit for s in content.systems for m in s.results.metrics if m.name == name), "")
        ax.set_ylabel(unit)
        ax.set_title(f"{name}: per-item distribution", fontsize=10)
        out.append((f"{name}: per-item distribution", _svg(fig)))
    return out


def comparison_deltas(content: ReportContent) -> list[tuple[str, str]]:
    """(title, svg) per comparison: new - base per metric with its 95 % interval."""
    out = []
    for comp in content.comparisons:
        metrics = [m for m in comp.metrics if m.interval is not None]
        if not metrics:
            continue
        fig, axes = plt.subplots(1, len(metrics), figsize=(2.4 * len(metrics), 2.4), squeeze=False)
        for ax, m in zip(axes[0], metrics, strict=True):
            # The interval drawn as its own line: a bootstrap percentile interval need not contain the
            # point estimate, so it is not an error bar around it.
            ax.vlines(0, m.interval.low, m.interval.high, color="#4c72b0", lw=2)
            ax.hlines([m.interval.low, m.interval.high], -0.1, 0.1, color="#4c72b0", lw=1)
            ax.plot([0], [m.delta], "o", color="#dd8452")
            ax.set_xlim(-1, 1)
            ax.axhline(0.0, color="grey", lw=0.8)
            ax.set_xticks([])
            ax.set_title(f"{m.name}\n{m.verdict}", fontsize=8)
            ax.set_ylabel(f"Δ {m.unit}", fontsize=8)
        title = f"{comp.new} - {comp.base}: difference with 95 % bootstrap interval"
        fig.tight_layout()
        out.append((title, _svg(fig)))
    return out


def latency_stages(content: ReportContent) -> list[tuple[str, str]]:
    """(title, svg) of a profile's median seconds per stage (when a profile JSON was given)."""
    if not content.profile:
        return []
    stages = content.profile.get("stages", {})
    names = [s for s in PROFILE_STAGES if s in stages]
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.barh(names, [stages[s]["median_s"] for s in names], color="#55a868")
    ax.set_xlabel("seconds (median, lower is better)")
    model = content.profile.get("model", {}).get("size", "?")
    ax.set_title(f"latency per stage, {model} (random weights)", fontsize=10)
    return [("latency per stage", _svg(fig))]


def all_plots(content: ReportContent) -> list[tuple[str, str]]:
    return (
        metric_bars(content)
        + item_distributions(content)
        + comparison_deltas(content)
        + latency_stages(content)
    )

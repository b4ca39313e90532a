"""`agomni suites [SUITE]`: every benchmark suite with its test set, protocol, metrics and published table, and
per metric whether `agomni eval` computes it in this version (`agomni.evaluate.registry.availability`);
naming one suite also prints what its `--data-root` must hold (`agomni.run.items.data_layout`)."""

from __future__ import annotations

import argparse

from agomni.evaluate.registry import availability
from agomni.run.items import data_layout, suite_run_spec
from agomni.suites import Suite, SuiteMetric, get_suite, load_suites, read_published
from agomni.weights import get_entry
from agomni.weights.store import quick_status


def format_suites(suites: dict[str, Suite]) -> str:
    """Every suite with its test set, protocol, metrics (unit, direction, and whether `agomni eval`
    computes each in this version) and published table."""
    lines = []
    for suite in suites.values():
        comparable = (
            "comparable with published numbers" if suite.comparable_with_published else "NOT comparable"
        )
        lines.append(f"{suite.name}  [{suite.task}]  {suite.title}")
        lines.append(
            f"    test set : {suite.test_set} ({suite.test_set_size} items; {suite.test_set_source})"
        )
        lines.append(f"    protocol : {suite.protocol} ({comparable})")
        available = sum(availability(m.name)[0] for m in suite.metrics)
        lines.append(
            f"    metrics  : ({available} of {len(suite.metrics)} computed by `agomni eval` in this version)"
        )
        for m in suite.metrics:
            direction = "higher" if m.higher_is_better else "lower"
            _, status = availability(m.name)
            lines.append(
                f"      {m.name} ({m.unit}, {direction} is better) - agomni eval: {status}{_fetch_hint(m)}"
            )
        published = (
            f"{len(read_published(suite))} rows in {suite.published.name}" if suite.published else "none"
        )
        lines.append(f"    published: {published}")
    return "\n".join(lines)


def _fetch_hint(metric: SuiteMetric) -> str:
    """How to bring the metric's checkpoints into the cache, when some are not there (no hashing)."""
    absent = [get_entry(n) for n in metric.weights if quick_status(get_entry(n)) != "cached"]
    if not absent:
        return ""
    commands = " && ".join(
        f"agomni weights fetch {e.name}" if e.url else f"agomni weights import {e.name} FILE" for e in absent
    )
    return f"; not in the weights cache: `{commands}`"


def format_data_root(suite: Suite) -> str:
    """What `agomni run SUITE --data-root DIR` reads: the importer, its layout and the published count."""
    importer = suite_run_spec(suite.name).importer or "none"
    layout = "\n".join(f"      {line}" for line in data_layout(suite.name).splitlines())
    return (
        f"    data root: importer {importer}; the published test set has {suite.test_set_size} items "
        f"(a run states how many of them it found)\n{layout}"
    )


def cli_suites(args: argparse.Namespace) -> int:
    if args.suite is None:
        print(format_suites(load_suites()))
        return 0
    suite = get_suite(args.suite)  # an unknown name is a UsageError listing the known suites
    print(format_suites({suite.name: suite}))
    print(format_data_root(suite))
    return 0

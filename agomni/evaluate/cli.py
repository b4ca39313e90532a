"""`agomni eval`: turn the parsed arguments into an `EvalRequest`, run it, print the numbers."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from agomni import distributed
from agomni.errors import EXIT_NOT_COMPUTED
from agomni.evaluate.pipeline import EvalOutcome, EvalRequest, evaluate
from agomni.evaluate.stage_profile import format_breakdown, write_breakdown
from agomni.results import ITEMS_FILE, RESULTS_FILE, CoverageEntry, NotComputed


def request_from_args(args: argparse.Namespace) -> EvalRequest:
    """The `EvalRequest` the `agomni eval` options describe (`command_line` is recorded in the results)."""

    def path(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    metrics = tuple(name for name in args.metrics.split(",") if name.strip()) if args.metrics else None
    return EvalRequest(
        pred_dir=Path(args.pred),
        ref_dir=path(args.ref),
        manifest=path(args.manifest),
        suite=args.suite,
        metrics=metrics,
        profile=args.profile,
        out=path(args.out),
        allow_missing=args.allow_missing,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        cache_dir=path(args.cache_dir),
        use_cache=not args.no_cache,
        random_weights=args.random_weights,
        command=command_line(args),
        progress=not args.no_progress,
        ref_superset=args.ref_superset,
        overwrite=args.overwrite,
        speech_backends=tuple(args.speech_backend or ()),
        strict=args.strict,
    )


def command_line(args: argparse.Namespace) -> tuple[str, ...]:
    """``agomni eval`` with every option that was set, in a fixed order (for the results' run.command)."""
    options = [
        f"--{key.replace('_', '-')}" if value is True else f"--{key.replace('_', '-')}={value}"
        for key, value in sorted(vars(args).items())
        if key != "command" and value is not None and value is not False
    ]
    return ("agomni", "eval", *options)


def format_outcome(outcome: EvalOutcome) -> str:
    """A short table: every metric with value, unit, direction, profile and n, then the KL direction and
    FAD-inf seed where they apply, where a profile is not exact, coverage (with the items a metric could
    not score), the embedders (weights,
    random weights, comparability) and where the results were written."""
    results = outcome.results
    rows = [("metric", "value", "unit", "direction", "profile", "n")]
    for m in results.metrics:
        value = f"{m.value:.6g}" + (f" ± {m.spread.value:.3g} ({m.spread.kind})" if m.spread else "")
        direction = "higher is better" if m.higher_is_better else "lower is better"
        rows.append((m.name, value, m.unit, direction, m.profile, "-" if m.n is None else str(m.n)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    settings = results.provenance.settings
    details = settings.metrics
    for m in results.metrics:
        info = details.get(m.name, {})
        if "direction_label" in info:
            lines.append(f"{m.name}: {info['direction_label']} ({m.profile}), averaged over {m.n} pairs")
        if info.get("kind") == "fad_inf":
            lines.append(f"{m.name}: FAD-inf intercept, subsampling seed {info['seed']}, r2 {info['r2']:.4g}")
    for name, profile in settings.profiles.items():
        note = profile.get("recipe", {}).get("notes")
        if note:
            lines.append(f"profile {name} differs from its toolkit: {note}")
    for m in results.metrics:
        info = details.get(m.name, {})
        flagged = info.get("flags", [])
        if flagged:
            lines.append(
                f"{m.name}: {len(flagged)} item(s) scored but flagged (e.g. {flagged[0]['id']}: "
                f"{'; '.join(flagged[0]['flags'])}); listed under 'flags' in the metric's details"
            )
    counts = Counter(entry.status for entry in results.coverage)
    lines.append(
        f"coverage: {counts['ok']} ok, {counts['error']} error, {counts['missing']} missing "
        f"(of {len(results.coverage)} entries)"
    )
    lines += unscored_lines(results.coverage)
    lines += not_computed_lines(results.not_computed)
    for m in results.metrics:
        info = details.get(m.name, {})
        if info.get("n_generated_items") != info.get("n_reference_items") and info.get("kind") != "is":
            lines.append(
                f"{m.name}: {info['n_generated_items']} generated and {info['n_reference_items']} reference "
                f"items ({info['uses_when_unpaired']} policy of {m.profile})"
            )
    for label, meta in settings.embedders.items():
        if meta["random_weights"]:
            weights = f"RANDOM WEIGHTS ({meta['checkpoint']})"
        elif meta["checkpoint"] == "none":
            weights = "no weights"
        else:
            weights = f"checkpoint sha256 {meta['checkpoint'][:12]}..."
        lines.append(f"embedder {label}: {weights}")
    if not outcome.comparable_with_published:
        lines.append("NOT comparable with published numbers (offline embedder or random weights)")
    lines.append(f"results: {outcome.path}" if outcome.path else "results: not written (no --out given)")
    return "\n".join(lines)


def not_computed_lines(entries: Sequence[NotComputed]) -> list[str]:
    """One line per requested metric without a value: kind, side, reason, item counts, first items, hint."""
    lines = []
    for entry in entries:
        side = f", {entry.side} side" if entry.side else ""
        counts = "; ".join(f"{n} item(s): {why}" for why, n in entry.counts.items())
        parts = [f"{entry.name}: NOT COMPUTED ({entry.kind}{side}): {entry.reason}"]
        parts += [counts] if counts else []
        parts += [f"first items: {', '.join(entry.items)}"] if entry.items else []
        parts += [entry.hint] if entry.hint else []
        lines.append(" - ".join(parts))
    return lines


def unscored_lines(coverage: Sequence[CoverageEntry], shown: int = 3) -> list[str]:
    """Per metric that could not score some "ok" items: how many, the first `shown` with their reasons."""
    lines = []
    for metric in sorted({m for entry in coverage for m in entry.unscored}):
        missed = [entry for entry in coverage if metric in entry.unscored]
        examples = "; ".join(f"{e.id}: {e.unscored[metric]}" for e in missed[:shown])
        more = f"; and {len(missed) - shown} more" if len(missed) > shown else ""
        lines.append(
            f"{metric}: {len(missed)} ok item(s) not scored ({examples}{more}); each listed under "
            "'unscored' in the results' coverage"
        )
    return lines


def cli_eval(args: argparse.Namespace) -> int:
    """Run `agomni eval` and print the table; errors propagate as typed agomni errors (exit codes). Under
    torchrun (``torchrun --nproc-per-node N -m agomni.cli eval ...``) each process scores its block of the
    items (`agomni.distributed`); rank 0 alone writes the results and prints the table."""
    shard = distributed.start(args.device)
    try:
        request = request_from_args(args)
        if not shard.main and request.out is not None:  # the files rank 0 writes are not inputs either
            own = (request.out / RESULTS_FILE, request.out / ITEMS_FILE)
            request = replace(request, out=None, own_files=(*request.own_files, *own))
        outcome = evaluate(request)
    finally:
        distributed.stop()
    if not shard.main:
        return EXIT_NOT_COMPUTED if outcome.results.not_computed else 0
    print(format_outcome(outcome))
    if args.profile_stages:
        print(format_breakdown(outcome.results.provenance.timings))
        if outcome.path is not None:
            print(
                f"stage profile: {write_breakdown(outcome.results.provenance.timings, outcome.path.parent)}"
            )
    return EXIT_NOT_COMPUTED if outcome.results.not_computed else 0

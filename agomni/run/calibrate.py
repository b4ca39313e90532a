"""`agomni calibrate SUITE --data-root D`: does this installation reproduce the suite's published numbers?

It runs the suite with the test set's own ground-truth audio as the "generated" side (generator
``ground-truth:reference``) and compares each metric with the suite's published ground-truth row (the
row whose system starts with "Ground truth", e.g. Seed-TTS test-en WER 2.06 / SIM-o 0.73, LibriSpeech-PC
2.23 / 0.69, LRS2 LSE-C/D with the Wav2Lip script). ``--generator folder:DIR --against SYSTEM`` checks a
published system's released outputs instead (v2a-vggsound: MMAudio's generated samples against
"MMAudio S-16k (paper)").

Verdict per metric:
- ``reproduced``: |ours - published| <= tolerance (`TOLERANCES`, in the metric's unit; ``--tolerance
  METRIC=VALUE`` overrides);
- ``outside tolerance``: further away (the difference is printed);
- ``not computable here``: the metric was skipped (e.g. weights not cached: the fetch command is given)
  or has no value;
- ``plumbing only``: scored with random network weights (tests the pipeline, compares with nothing);
- ``not the published recipe``: scored with a recogniser / speaker encoder other than the protocol's
  (e.g. the offline pocketsphinx / resemblyzer), so a pass/fail would mean nothing;
- ``no published value``: the reference row has no number for this metric.
Files: the run folder (``--out``) plus ``calibration.json`` and ``calibration.md`` in it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from agomni.atomic import atomic_write
from agomni.errors import UsageError
from agomni.report.compare import parse_tolerances
from agomni.suites import get_suite, load_metric_specs, read_published

from .generators import GenSettings
from .runner import RunRequest, load_run, run_suite

# Allowed |ours - published| per metric, in the metric's unit: the registry's ``tolerance`` column, about
# the spread of re-runs reported for each protocol (MMAudio's maintainers re-ran FD-PaSST 69.50 against
# 70.19 printed).
TOLERANCES = {name: s.tolerance for name, s in load_metric_specs().items() if s.tolerance is not None}
DEFAULT_RELATIVE = 0.05  # metrics without an entry: 5 % of the published value


@dataclass(frozen=True)
class Verdict:
    metric: str
    unit: str
    published: float | None
    ours: float | None
    tolerance: float | None
    verdict: str
    detail: str


def _reference(suite_name: str, against: str | None) -> tuple[str, dict[str, float]]:
    rows = read_published(get_suite(suite_name))
    systems = list(dict.fromkeys(r["system"] for r in rows))
    if against is None:
        matches = [s for s in systems if s.lower().startswith("ground truth")]
        if not matches:
            raise UsageError(
                f"suite {suite_name} has no published ground-truth row; name a published system with "
                f"--against (one of: {', '.join(systems) or 'none'})"
            )
        against = matches[0]
    if against not in systems:
        raise UsageError(
            f"--against {against!r}: not a published system of {suite_name} ({', '.join(systems)})"
        )
    return against, {r["metric"]: float(r["value"]) for r in rows if r["system"] == against}


def verdicts(run_dir: Path, reference: dict[str, float], tolerances: dict[str, float]) -> list[Verdict]:
    """The verdict of every metric of the suite run in `run_dir` (module docstring)."""
    results, context = load_run(run_dir)
    suite = get_suite(results.run.suite or context["suite"])
    computed = {m.name: m for m in results.metrics}
    skipped = {s["name"]: s for s in context.get("metrics_skipped", [])}
    details = results.provenance.settings.metrics
    out = []
    for spec in suite.metrics:
        name = spec.name
        published = reference.get(name)
        metric = computed.get(name)
        ours = None if metric is None else metric.value
        tol = tolerances.get(name, TOLERANCES.get(name))
        if tol is None and published is not None:
            tol = abs(published) * DEFAULT_RELATIVE
        if metric is None:
            skip = skipped.get(name)
            why = skip["reason"] if skip else "no value in this run"
            if skip and skip.get("command"):
                why += f"; run: {skip['command']}"
            out.append(Verdict(name, spec.unit, published, None, tol, "not computable here", why))
        elif results.random_weights:
            out.append(
                Verdict(name, spec.unit, published, ours, tol, "plumbing only", "random network weights")
            )
        elif details.get(name, {}).get("comparable_with_published") is False:
            backend = details[name].get("backend", "an offline backend")
            text = f"scored with {backend}; the protocol's recogniser / encoder gives the published number"
            out.append(Verdict(name, spec.unit, published, ours, tol, "not the published recipe", text))
        elif published is None:
            out.append(Verdict(name, spec.unit, None, ours, tol, "no published value", ""))
        else:
            diff = ours - published
            word = "reproduced" if abs(diff) <= tol else "outside tolerance"
            out.append(Verdict(name, spec.unit, published, ours, tol, word, f"difference {diff:+.4g}"))
    return out


def render(suite: str, against: str, rows: list[Verdict]) -> str:
    lines = [
        f"# agomni calibrate {suite}: this installation against the published row {against!r}",
        "",
        "| metric | unit | published | ours | tolerance (±) | verdict | detail |",
        "|---|---|---|---|---|---|---|",
    ]

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.4g}"

    for v in rows:
        lines.append(
            f"| {v.metric} | {v.unit} | {num(v.published)} | {num(v.ours)} | {num(v.tolerance)} | "
            f"{v.verdict} | {v.detail} |"
        )
    return "\n".join(lines) + "\n"


def cli_calibrate(args: argparse.Namespace) -> int:
    against, reference = _reference(args.suite, args.against)
    out = Path(args.out)
    run_suite(
        RunRequest(
            suite=args.suite,
            out=out,
            generator=args.generator,
            data_root=None if args.data_root is None else Path(args.data_root),
            metrics=None if not args.metrics else tuple(m.strip() for m in args.metrics.split(",")),
            settings=GenSettings(device=args.device, progress=not args.no_progress),
            command=("agomni", "calibrate", args.suite),
            speech_backends=tuple(args.speech_backend or ()),
            random_weights=args.random_weights,
        )
    )
    rows = verdicts(out, reference, parse_tolerances(args.tolerance))
    text = render(args.suite, against, rows)
    doc = {"suite": args.suite, "against": against, "verdicts": [asdict(v) for v in rows]}
    atomic_write(out / "calibration.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    atomic_write(
        out / "calibration.json",
        lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8"),
    )
    print(text, end="")
    print(f"wrote {out / 'calibration.md'} and {out / 'calibration.json'}")
    return 0

"""`agomni run SUITE`: argument handling around agomni.run.runner, then the report (and comparison)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from agomni import distributed
from agomni.errors import UsageError

from .generators import KINDS, GenSettings
from .items import suite_run_spec
from .runner import RunRequest, run_suite

_NAMED = re.compile(rf"^([\w.-]+)=((?:{'|'.join(KINDS)}):.*)$", re.DOTALL)
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as err:
        raise UsageError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from err
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: give distinct integers, e.g. 0,1,2")
    return seeds


def named_generators(specs: list[str] | None, suite: str) -> dict[str, str]:
    """{name: spec} from ``--generator [NAME=]SPEC`` values, else the suite's default generators."""
    if not specs:
        defaults = suite_run_spec(suite).generators
        if not defaults:
            raise UsageError(f"suite {suite!r} has no default generator; pass --generator KIND:VALUE")
        return {name: spec.replace("{agomni}", str(PACKAGE_DIR)) for name, spec in defaults.items()}
    out: dict[str, str] = {}
    for i, spec in enumerate(specs):
        match = _NAMED.match(spec)
        name, value = (match.group(1), match.group(2)) if match else (f"g{i}" if len(specs) > 1 else "", spec)
        if name in out:
            raise UsageError(f"--generator: the name {name!r} is used twice")
        out[name] = value
    return out


def cli_run(args: argparse.Namespace) -> int:
    from agomni.report.render import write_report

    generators = named_generators(args.generator, args.suite)
    out = Path(args.out)
    settings = GenSettings(
        steps=args.steps,
        cfg=args.cfg,
        device=args.device,
        dtype=args.dtype,
        sample_rate=args.sample_rate,
        timeout_s=args.timeout,
        progress=not args.no_progress,
    )
    shard = distributed.start(args.device)
    try:
        run_dirs = _run_all(args, generators, settings, out)
        if not shard.main:
            return 0
    finally:
        distributed.stop()
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = write_report(run_dirs, out, formats, compare=len(run_dirs) > 1, resamples=args.resamples)
    for path in written:
        print(f"wrote {path}")
    return 0


def _run_all(
    args: argparse.Namespace, generators: dict[str, str], settings: GenSettings, out: Path
) -> list[Path]:
    """One run folder per generator (RUN/runs/NAME when there are several)."""
    several = len(generators) > 1
    data_root = args.data_root
    if data_root is None and suite_run_spec(args.suite).importer == "toycorpus":
        data_root = out / "data"  # built once, shared by every generator's run
    run_dirs = []
    for name, spec in generators.items():
        run_dir = out / "runs" / name if several else out
        request = RunRequest(
            suite=args.suite,
            out=run_dir,
            generator=spec,
            data_root=None if data_root is None else Path(data_root),
            manifest=None if args.manifest is None else Path(args.manifest),
            seeds=parse_seeds(args.seeds),
            num_samples=args.num_samples,
            metrics=tuple(args.metrics.split(",")) if args.metrics else None,
            settings=settings,
            batch_size=args.batch_size,
            speech_backends=tuple(args.speech_backend or ()),
            command=tuple(["agomni", *sys.argv[1:]]),
            random_weights=args.random_weights,
        )
        run_suite(request)
        run_dirs.append(run_dir)
    return run_dirs

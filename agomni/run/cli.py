"""`agomni run SUITE`: argument handling around agomni.run.runner, then the report (and comparison).

Every option is checked before any work (`check_options`: a usage error, exit 2). A write that fails for
lack of space or permission, and a file or folder the run cannot read, end the run with one sentence
naming the path and what to do (`os_error_message`), never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

import soundfile as sf

from agomni import distributed
from agomni.errors import EXIT_NOT_COMPUTED, AgomniError, UsageError
from agomni.model.flow_matching import DEFAULT_CFG, DEFAULT_STEPS
from agomni.report.render import FORMATS, write_report
from agomni.results import read_results

from .generators import KINDS, GenSettings
from .items import suite_run_spec
from .runner import RunRequest, run_suite

_NAMED = re.compile(rf"^([^=:]*)=((?:{'|'.join(KINDS)}):.*)$", re.DOTALL)
_FOLDER_NAME = re.compile(r"^\w[\w.-]*$")
#: errno values that mean "this file system cannot take the run's files".
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
FULL_BYTES = 1 << 20  # less free space than this in --out: a failed audio write is a full disk
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
        if match and not _FOLDER_NAME.match(name):
            raise UsageError(
                f"--generator {spec!r}: the name {name!r} is not a plain folder name (letters, digits, '_', "
                "'-', '.'; not starting with '.' or '-'); it names the folder RUN/runs/NAME"
            )
        if name in out:
            raise UsageError(f"--generator: the name {name!r} is used twice")
        out[name] = value
    return out


def check_options(args: argparse.Namespace) -> None:
    """UsageError for any option value that makes no sense, before any work. --steps / --cfg not given
    become the model's defaults (`agomni.model.flow_matching`)."""
    args.steps = DEFAULT_STEPS if args.steps is None else args.steps
    args.cfg = DEFAULT_CFG if args.cfg is None else args.cfg
    positive = {
        "--timeout": args.timeout,
        "--sample-rate": args.sample_rate,
        "--steps": args.steps,
        "--num-samples": args.num_samples,
        "--batch-size": args.batch_size,
        "--resamples": args.resamples,
    }
    bad = [
        f"{name} {value!r}" for name, value in positive.items() if not (math.isfinite(value) and value > 0)
    ]
    if not math.isfinite(args.cfg):
        bad.append(f"--cfg {args.cfg!r}")
    if bad:
        raise UsageError(f"{', '.join(bad)}: give a finite number above 0 (see agomni run --help)")
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(
            f"--format {args.format!r}: choose one or more of {', '.join(FORMATS)}, e.g. md,html"
        )


def check_writable(out: Path) -> None:
    """UsageError unless `out` can be created and written (checked with a real file: permissions alone
    do not tell, e.g. on a read-only mount)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as err:
        raise UsageError(
            f"--out {out}: cannot write there ({err.strerror}); choose a folder you can write to"
        ) from err


def os_error_message(err: OSError) -> str:
    """One sentence for an operating-system error met during a run: the path, the cause, what to do."""
    path = err.filename or "a file of the run"
    if err.errno in _WRITE_ERRNOS:
        return (
            f"cannot write {path} ({err.strerror}); free some space or choose another --out, then run again"
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied for {path}; make it readable (folders: readable and searchable) by this "
            "user, or --out writable, then run again"
        )
    return f"{path}: {err.strerror or err}; check the file and run again"


def audio_error_message(err: sf.LibsndfileError, out: Path) -> str:
    """One sentence for a soundfile error that escaped the per-item checks (it names no errno)."""
    if shutil.disk_usage(out).free < FULL_BYTES:
        return (
            f"cannot write an audio file in {out} ({err}): its disk is full; free some space or choose "
            "another --out, then run again"
        )
    return (
        f"an audio file could not be read or written ({err}); check the file it names and the free space "
        f"in {out}, then run again"
    )


def cli_run(args: argparse.Namespace) -> int:
    check_options(args)
    generators = named_generators(args.generator, args.suite)
    out = Path(args.out)
    check_writable(out)
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
        try:
            run_dirs = _run_all(args, generators, settings, out)
        except OSError as err:
            raise AgomniError(os_error_message(err)) from err
        except sf.LibsndfileError as err:  # soundfile's errors (e.g. writing to a full disk) are not OSErrors
            raise AgomniError(audio_error_message(err, out)) from err
        if not shard.main:
            return 0
    finally:
        distributed.stop()
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    try:
        written = write_report(run_dirs, out, formats, compare=len(run_dirs) > 1, resamples=args.resamples)
    except OSError as err:
        raise AgomniError(os_error_message(err)) from err
    for path in written:
        print(f"wrote {path}")
    return _not_computed_status(run_dirs)


def _not_computed_status(run_dirs: list[Path]) -> int:
    """0 when every run computed every requested metric, else EXIT_NOT_COMPUTED with one line per metric
    on stderr."""
    lines = [
        f"{run_dir}: {entry.name} not computed ({entry.kind}): {entry.reason}"
        for run_dir in run_dirs
        for entry in read_results(run_dir / "results.json").not_computed
    ]
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_NOT_COMPUTED if lines else 0


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
            overwrite=args.overwrite,
            strict=args.strict,
            profile_stages=args.profile_stages,
        )
        run_suite(request)
        run_dirs.append(run_dir)
    return run_dirs

"""The `agomni` command line. Argument definitions live here; each command's work lives in its module.

Deliberate errors (agomni.errors.AgomniError) print as one message and exit with the error's code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from . import __version__
from .allocator import keep_freed_memory
from .errors import AgomniError
from .suites import load_metric_specs

# command -> "module:function" taking the parsed args and returning an exit code.
_HANDLERS: dict[str, str] = {
    "suites": "agomni.suite_listing:cli_suites",
    "validate": "agomni.manifest:cli_validate",
    "weights": "agomni.weights.cli:cli_weights",
    "selfcheck": "agomni.selfcheck:cli_selfcheck",
    "eval": "agomni.evaluate.cli:cli_eval",
    "generate": "agomni.model.cli:cli_generate",
    "profile": "agomni.model.cli:cli_profile",
    "train": "agomni.model.train.cli:cli_train",
    "run": "agomni.run.cli:cli_run",
    "report": "agomni.report.cli:cli_report",
    "compare": "agomni.report.compare:cli_compare",
    "calibrate": "agomni.run.calibrate:cli_calibrate",
}


def _metrics_help(default: str) -> str:
    """--metrics help: every metric of the registry (evaluation/metrics.json) by family."""
    families: dict[str, list[str]] = {}
    for name, spec in load_metric_specs().items():
        if spec.family not in ("catalogue", "validation"):
            families.setdefault(spec.family.replace("_", "-"), []).append(name)
    listed = "; ".join(f"{family}: {', '.join(names)}" for family, names in families.items())
    return f"comma-separated metric names (default: {default}); `agomni suites` says which are available. {listed}"


def _add_speech_backend(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speech-backend",
        action="append",
        metavar="NAME",
        help="recogniser (pocketsphinx [default, offline], whisper-large-v3, faster-whisper, paraformer-zh) or "
        "speaker encoder (resemblyzer [default, offline], speechbrain-ecapa, wavlm-ecapa) of the speech metrics; "
        "repeat for both roles",
    )


EXIT_STATUS = (
    "exit status: 0 every requested metric computed; 4 results and report written but some metric not "
    "computed (listed under 'Not computed' with the reason; --strict ends at the first one instead); 2 "
    "usage or input error; 3 not available in this version; 1 any other error"
)


def _add_scoring_options(p: argparse.ArgumentParser) -> None:
    """--strict, --speech-backend and --profile-stages, shared by eval and run."""
    p.add_argument(
        "--strict",
        action="store_true",
        help="end at the first metric that cannot be computed (default: compute the others, list it as not "
        "computed and exit 4)",
    )
    _add_speech_backend(p)
    p.add_argument(
        "--profile-stages",
        action="store_true",
        help="print the seconds of each stage (decode, resample, hashing, cache I/O, each network, metric "
        "maths) with its share of the total, and write them to timings.json next to results.json",
    )


def _add_embedder_batch(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="clips per embedder call (audio-visual metrics: SyncNet windows, Synchformer segments, ImageBind clips per call)",
    )


def _add_compile(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="CUDA graphs via torch.compile(mode='reduce-overhead') (default: on for CUDA)",
    )


class _SamplerDefaultsHelp(argparse.HelpFormatter):
    """Help text with the sampler defaults filled in: ``{steps}`` and ``{cfg}`` become
    `agomni.model.flow_matching.DEFAULT_STEPS` / `DEFAULT_CFG`, the one place they are set. The model is
    imported only when help is printed (importing it loads torch, seconds that other commands need not
    pay); options left out are None and the command takes the same constants."""

    def _expand_help(self, action: argparse.Action) -> str:
        text = super()._expand_help(action)
        if "{steps}" not in text and "{cfg}" not in text:
            return text
        model = importlib.import_module("agomni.model.flow_matching")
        return text.replace("{steps}", str(model.DEFAULT_STEPS)).replace("{cfg}", str(model.DEFAULT_CFG))


def _add_sampler(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--steps and --cfg, None when not given (the model's defaults, shown in the help)."""
    p.add_argument("--steps", type=int, help=f"{prefix}flow-matching Euler steps (default: {{steps}})")
    p.add_argument(
        "--cfg",
        type=float,
        help=f"{prefix}classifier-free guidance strength w, 1 = no CFG branch (default: {{cfg}})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agomni",
        description="Evaluate, generate and profile video-synchronized audio, speech and song.",
    )
    parser.add_argument("--version", action="version", version=f"agomni {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "eval", help="score generated audio on a suite or against reference audio", epilog=EXIT_STATUS
    )
    p.add_argument("--suite", help="suite name (see `agomni suites`)")
    p.add_argument("--pred", required=True, help="folder of generated files, named by item id")
    p.add_argument("--ref", help="folder of reference files (when no suite manifest gives them)")
    p.add_argument("--metrics", help=_metrics_help("the suite's; fd-mel-stats spelling accepted"))
    p.add_argument("--out", help="run folder to write results into")
    p.add_argument(
        "--allow-missing", action="store_true", help="record unpaired items and unused files in coverage"
    )
    p.add_argument(
        "--ref-superset", action="store_true", help="--ref may hold more files than the generated items"
    )
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--manifest", help="manifest naming the items (references: --ref or reference_audio)")
    p.add_argument("--profile", help="recipe for every metric (default: the suite's, else each metric's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] for the embedders")
    _add_embedder_batch(p)
    p.add_argument("--seed", type=int, default=0, help="seed (recorded; used by random-weight embedders)")
    p.add_argument("--cache-dir", help="embedding cache root (default: $AGOMNI_HOME/cache)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.add_argument("--random-weights", action="store_true", help="seeded random network weights (labelled)")
    _add_scoring_options(p)

    p = sub.add_parser(
        "generate", help="generate audio for a suite with a checkpoint", formatter_class=_SamplerDefaultsHelp
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint stem, .safetensors or .json path")
    p.add_argument("--suite", help="suite name (its task is checked against the items)")
    p.add_argument("--manifest", help="manifest JSONL, or a folder of <split>/manifest.jsonl (with --split)")
    p.add_argument("--split", help="split folder inside a --manifest folder (e.g. heldout of a toy corpus)")
    p.add_argument("--out", required=True, help="new or empty folder for the WAV files and JSON sidecars")
    p.add_argument("--seed", type=int, default=0, help="run seed; per-sample noise seeds derive from it")
    p.add_argument("--num-samples", type=int, default=1, help="samples per item")
    _add_sampler(p)
    p.add_argument("--duration", type=float, help="seconds per item (default: each item's, else 8)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument(
        "--dtype", choices=["fp32", "bf16"], help="network weights (default: bf16 on CUDA, fp32 on CPU)"
    )
    _add_compile(p)
    p.add_argument("--batch-size", type=int, help="items per network call (default: the model's)")

    p = sub.add_parser(
        "run",
        help="generate for a suite, score it, write results and a report",
        epilog=EXIT_STATUS,
        formatter_class=_SamplerDefaultsHelp,
    )
    p.add_argument("suite", metavar="SUITE", help="suite name (see `agomni suites`); smoke runs offline")
    p.add_argument(
        "--generator",
        action="append",
        metavar="[NAME=]SPEC",
        help="checkpoint:PATH | folder:DIR | python:module:function | command:TEMPLATE; repeat to run "
        "several (default: the suite's own, e.g. smoke: the shipped early and final toy checkpoints)",
    )
    p.add_argument("--out", required=True, help="run folder (several generators: OUT/runs/NAME + report)")
    p.add_argument(
        "--data-root",
        help="your local copy of the suite's test set, read only (`agomni suites SUITE` prints its layout)",
    )
    p.add_argument("--manifest", help="score the items of this manifest instead of the suite's test set")
    p.add_argument("--num-samples", type=int, default=1, help="samples per item")
    p.add_argument("--seeds", default="0", help="comma-separated run seeds, e.g. 0,1,2")
    p.add_argument("--metrics", help=_metrics_help("the suite's"))
    _add_sampler(p, "checkpoint: ")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (generation and embedders)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="checkpoint: network precision")
    p.add_argument(
        "--sample-rate", type=int, default=16000, help="python:/command: rate (Hz) files must have"
    )
    p.add_argument("--timeout", type=float, default=600.0, help="command: seconds per item before it fails")
    _add_embedder_batch(p)
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="score with seeded random network weights (no weights needed; labelled; tests and latency only)",
    )
    p.add_argument(
        "--format",
        default="md,html,csv,csv-wide,tex,json",
        help="report formats: md,html,csv,csv-wide,tex,json",
    )
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the comparison")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="regenerate files in --out that another generator, other settings or a hand made (default: "
        "such files are an error; files this run would have made are reused)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    _add_scoring_options(p)

    p = sub.add_parser("report", help="render reports from run folders")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--format", default="md", help="comma-separated: md,html,csv,csv-wide,tex,json")
    p.add_argument("--out", help="folder for the report files (default: the first run folder)")
    p.add_argument("--against-paper", action="store_true", help="add the suite's published rows")
    p.add_argument("--profile", metavar="JSON", help="a latency profile (`agomni profile --json`) to plot")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the comparison")

    p = sub.add_parser("compare", help="compare two runs; non-zero exit on a significant regression")
    p.add_argument("base", metavar="BASE_RUN", nargs="+", help="the base run (--baseline best: earlier runs)")
    p.add_argument("new", metavar="NEW_RUN")
    p.add_argument(
        "--baseline",
        choices=["first", "best"],
        default="first",
        help="best: per metric, the earlier run (of several checkpoints) with the best value is the base",
    )
    p.add_argument("--tolerance", action="append", metavar="METRIC=VALUE", help="allowed worsening")
    p.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 on a significant regression, a metric BASE computed and NEW did not, or items BASE "
        "scored and NEW did not",
    )
    p.add_argument(
        "--allow-lost-items",
        action="store_true",
        help="items BASE scored and NEW did not are no failure (the comparison uses the shared items)",
    )
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", metavar="PATH", help="also write the comparison as JSON")

    p = sub.add_parser(
        "calibrate", help="score a test set's ground truth and compare with the suite's published row"
    )
    p.add_argument("suite", metavar="SUITE", help="suite name (see `agomni suites`)")
    p.add_argument("--data-root", help="your local copy of the suite's test set")
    p.add_argument("--out", required=True, help="run folder for the ground-truth run and calibration.md")
    p.add_argument(
        "--generator",
        default="ground-truth:reference",
        help="what is scored: the test set's ground truth (default) or e.g. folder:DIR of a system's outputs",
    )
    p.add_argument("--against", help="published system to compare with (default: the ground-truth row)")
    p.add_argument("--tolerance", action="append", metavar="METRIC=VALUE", help="allowed |ours - published|")
    p.add_argument("--metrics", help=_metrics_help("the suite's"))
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument(
        "--random-weights", action="store_true", help="seeded random networks: checks the plumbing only"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    _add_speech_backend(p)

    p = sub.add_parser(
        "profile",
        help="parameter counts and per-stage latency of the reference model",
        formatter_class=_SamplerDefaultsHelp,
    )
    p.add_argument("--size", required=True, choices=["tiny", "S", "M", "L"])
    p.add_argument("--params", action="store_true", help="print parameter counts per component, run nothing")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of audio per generation")
    _add_sampler(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument(
        "--dtype", choices=["fp32", "bf16"], help="network weights (default: bf16 on CUDA, fp32 on CPU)"
    )
    p.add_argument("--batch", type=int, default=1, help="clips per generation")
    p.add_argument("--repeats", type=int, default=3, help="timed generations (after one warm-up)")
    _add_compile(p)
    p.add_argument("--json", metavar="PATH", help="also write the timings as JSON to PATH")

    p = sub.add_parser("train", help="train the reference model")
    p.add_argument(
        "config",
        metavar="CONFIG",
        help="JSON training config (toy model: agomni/model/train/configs/toy-tiny.json)",
    )
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest state in the run folder")
    p.add_argument("--max-steps", type=int, help="override the config's train.max_steps")
    p.add_argument("--device", help="cpu or cuda[:N] (default: cuda when available)")

    p = sub.add_parser("weights", help="the checkpoint registry and cache")
    wsub = p.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    w = wsub.add_parser("list", help="every registry entry with size, SHA-256, licence and cache status")
    w.add_argument("--json", action="store_true", help="machine-readable output")
    w = wsub.add_parser("fetch", help="download one checkpoint into the cache (resumes, verifies)")
    w.add_argument("name")
    w.add_argument("--url", help="download from this URL instead of the registry's (a mirror)")
    w = wsub.add_parser("import", help="copy a local file into the cache after verifying it")
    w.add_argument("name")
    w.add_argument("path")
    w = wsub.add_parser("verify", help="re-hash cached files and compare with their pinned/recorded SHA-256")
    w.add_argument("names", nargs="*", metavar="NAME", help="default: every cached entry")

    p = sub.add_parser("suites", help="list suites with their protocol summary; SUITE: also its data layout")
    p.add_argument("suite", nargs="?", metavar="SUITE", help="one suite, with what its --data-root must hold")

    p = sub.add_parser("validate", help="check a manifest; exit 2 with one line per problem")
    p.add_argument("manifest", metavar="MANIFEST")

    p = sub.add_parser("selfcheck", help="check the installation end to end on embedded data")
    p.add_argument("--out", help="keep the generated files and results JSON in this (new or empty) folder")
    return parser


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, func = _HANDLERS[command].split(":")
    return getattr(importlib.import_module(module), func)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _handler(args.command)(args)
    except AgomniError as err:
        print(f"agomni {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console() -> int:
    """The ``agomni`` command: `main` after `agomni.allocator.keep_freed_memory` (process-wide, so not in
    `main`, which tests and other programs call in their own process)."""
    keep_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(console())

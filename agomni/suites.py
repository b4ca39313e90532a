"""Suites: the standardized benchmarks as data (evaluation/suites/*.json, evaluation/metrics.json).

A suite names its task, test set, protocol (the reference recipe, e.g. `av-benchmark`), the metrics it
reports and, where one exists, a CSV of published numbers (evaluation/published/) with a source column.
`agomni suites` (`agomni.suite_listing`) also says, per metric, whether `agomni eval` computes it in this
version, so a suite run's coverage is known before it starts.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .manifest.fields import TASKS
from .paths import evaluation_dir

# source: short citation; url: its link ("" when none is public); test_set: the exact variant the number
# was measured on; not_comparable: why the row does not compare with this suite's protocol ("" when it does)
PUBLISHED_COLUMNS = (
    "system",
    "metric",
    "value",
    "unit",
    "higher_is_better",
    "source",
    "url",
    "test_set",
    "not_comparable",
)


#: How a metric is computed (the ``family`` of its evaluation/metrics.json row): "embedding" (a set
#: statistic over the embedder networks' cached outputs: FD, KAD, KL, IS, FAD-inf;
#: `agomni.evaluate.registry.EMBEDDERS` builds each network), "audio_visual" (each generated file against
#: its item's video: `agomni.metrics.av`), "text_audio" (against its caption: `agomni.metrics.text_audio`),
#: "speech" (against its transcript, lyrics or prompt, or on its own: `agomni.metrics.speech`), "catalogue"
#: (a name papers use that this version computes under another name: ``use_instead``), "validation" (the
#: flow-matching validation loss `agomni run` adds for a checkpoint agomni trained: `agomni.run.validation`).
FAMILIES = ("embedding", "audio_visual", "text_audio", "speech", "catalogue", "validation")
#: The families `agomni eval` computes from a network: each of their rows names it (``network``); the rows
#: of one family with the same network are scored by one run of it where the family's stage shares runs.
COMPUTED = ("embedding", "audio_visual", "text_audio", "speech")


@dataclass(frozen=True)
class SuiteMetric:
    """One row of evaluation/metrics.json, the metric registry: title, unit, direction, reference recipe,
    the weights it needs, its family (`FAMILIES`), the Python modules it needs beyond agomni's own
    dependencies, a note `agomni suites` adds to "available", and for a catalogue name what to use instead.
    A row of a computed family (`COMPUTED`) names its ``network`` (the key of the stage's network table:
    an embedder of `agomni.evaluate.registry.EMBEDDERS`, a speech run, an audio-visual or text-audio
    scorer); an embedding row also names its ``statistic`` (`agomni.evaluate.registry.KINDS`) and, when
    it may run under some profiles only, those (``profiles``; its ``recipe`` is the default profile).
    How an accumulator labels its numbers is `agomni.metrics.base.MetricSpec`."""

    name: str
    title: str
    unit: str
    higher_is_better: bool
    recipe: str
    weights: tuple[str, ...]
    family: str = "embedding"
    requires: tuple[str, ...] = ()
    note: str = ""
    use_instead: str = ""
    label: str = ""  # the short column name of paper tables ("FD-PaSST"); the name when empty
    paper_columns: tuple[tuple[str, int], ...] = ()  # (task, column position in that task's paper table)
    network: str = ""  # the network that computes it ("" for a catalogue or validation row)
    statistic: str = ""  # embedding rows: the set statistic of the network's outputs ("fd", "kad" ...)
    profiles: tuple[str, ...] = ()  # embedding rows: the only profiles it may run under (empty: any)
    # `agomni calibrate`: allowed |ours - published| in the metric's unit (None: 5 % of the published value)
    tolerance: float | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    task: str
    title: str
    test_set: str
    test_set_size: int
    test_set_source: str
    protocol: str
    comparable_with_published: bool
    metrics: tuple[SuiteMetric, ...]
    published: Path | None
    notes: str
    # the recogniser / speaker encoder its protocol uses (`agomni.metrics.speech.eval_stage.BACKENDS`)
    speech_backends: tuple[str, ...] = ()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{path}: cannot read protocol data: {err}") from err
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def load_metric_specs(root: Path | None = None) -> dict[str, SuiteMetric]:
    """Every metric a suite may name, from evaluation/metrics.json (parsed once per version of the file:
    the report, the help and the evaluation ask for it many times)."""
    path = (root or evaluation_dir()) / "metrics.json"
    try:
        stat = path.stat()
    except OSError:
        return _parse_metric_specs(path)  # the read names the problem
    return dict(_cached_metric_specs(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _cached_metric_specs(path: str, mtime_ns: int, size: int) -> dict[str, SuiteMetric]:
    return _parse_metric_specs(Path(path))


def _parse_metric_specs(path: Path) -> dict[str, SuiteMetric]:
    specs = {}
    for name, entry in _read_json(path).items():
        try:
            specs[name] = SuiteMetric(
                name=name,
                title=entry["title"],
                unit=entry["unit"],
                higher_is_better=bool(entry["higher_is_better"]),
                recipe=entry["recipe"],
                weights=tuple(entry["weights"]),
                family=entry["family"],
                requires=tuple(entry.get("requires", ())),
                note=entry.get("note", ""),
                use_instead=entry.get("use_instead", ""),
                label=entry.get("label", ""),
                paper_columns=tuple(sorted(entry.get("paper_columns", {}).items())),
                network=entry.get("network", ""),
                statistic=entry.get("statistic", ""),
                profiles=tuple(entry.get("profiles", ())),
                tolerance=None if entry.get("tolerance") is None else float(entry["tolerance"]),
            )
        except KeyError as err:
            raise UsageError(f"{path}: metric {name!r} lacks the field {err}") from err
        problem = _row_problem(specs[name])
        if problem:
            raise UsageError(f"{path}: metric {name!r}: {problem}")
    return specs


def _row_problem(spec: SuiteMetric) -> str:
    """What is wrong with one parsed row ("" when nothing)."""
    if spec.family not in FAMILIES:
        return f"family {spec.family!r} is not one of {FAMILIES}"
    if (spec.family == "catalogue") != bool(spec.use_instead):
        return "a catalogue name (and only one) says what to use instead"
    if (spec.family in COMPUTED) != bool(spec.network):
        return f"a row of a computed family ({', '.join(COMPUTED)}), and only one, names its network"
    if (spec.family == "embedding") != bool(spec.statistic):
        return "an embedding row, and only one, names its statistic"
    if spec.profiles and spec.family != "embedding":
        return "only an embedding row restricts its profiles"
    if spec.tolerance is not None and not spec.tolerance >= 0:
        return f"its tolerance {spec.tolerance!r} is not a non-negative number in its unit"
    if spec.profiles and spec.recipe not in spec.profiles:
        return f"its recipe {spec.recipe!r} (the default profile) is not one of its profiles {spec.profiles}"
    return ""


def check_known(family: str, column: str, known: Iterable[str], root: Path | None = None) -> None:
    """Raise ``UsageError`` naming each registry row of ``family`` whose ``column`` ("network",
    "statistic") is not in ``known`` (the keys of the table of the code that computes the family)."""
    known = tuple(known)
    unknown = [
        f"metric {name!r} names {column} {getattr(spec, column)!r}"
        for name, spec in load_metric_specs(root).items()
        if spec.family == family and getattr(spec, column) not in known
    ]
    if unknown:
        raise UsageError(
            f"{(root or evaluation_dir()) / 'metrics.json'}: {'; '.join(unknown)}, which this version does "
            f"not compute for the {family} family (known: {', '.join(known)})"
        )


def network_of(name: str, root: Path | None = None) -> str:
    """The network of registry row ``name`` ("" for a name the registry lacks or a row without one)."""
    spec = load_metric_specs(root).get(name)
    return spec.network if spec is not None else ""


def network_rows(family: str, network: str, root: Path | None = None) -> tuple[str, ...]:
    """The registry's metrics of ``family`` that ``network`` computes, in registry order."""
    return tuple(
        name
        for name, spec in load_metric_specs(root).items()
        if spec.family == family and spec.network == network
    )


def task_columns(task: str, root: Path | None = None) -> tuple[str, ...]:
    """The metrics a paper table of ``task`` shows first, in the order the task's anchor papers print them
    (the registry's ``paper_columns``)."""
    placed = [
        (dict(s.paper_columns)[task], n)
        for n, s in load_metric_specs(root).items()
        if task in dict(s.paper_columns)
    ]
    return tuple(name for _, name in sorted(placed))


def family_names(family: str, root: Path | None = None) -> tuple[str, ...]:
    """The registry's metrics of ``family``, in registry order."""
    return tuple(name for name, spec in load_metric_specs(root).items() if spec.family == family)


def _parse_suite(path: Path, metrics: dict[str, SuiteMetric]) -> Suite:
    data = _read_json(path)
    try:
        name, task, metric_names = data["name"], data["task"], data["metrics"]
        test_set = data["test_set"]
        published = data["published"]
        suite = Suite(
            name=name,
            task=task,
            title=data["title"],
            test_set=test_set["name"],
            test_set_size=int(test_set["size"]),
            test_set_source=test_set["source"],
            protocol=data["protocol"],
            comparable_with_published=bool(data["comparable_with_published"]),
            metrics=tuple(metrics[m] for m in metric_names if m in metrics),
            published=path.parent.parent / "published" / published if published else None,
            notes=data.get("notes", ""),
            speech_backends=tuple(data.get("speech_backends") or ()),
        )
    except KeyError as err:
        raise UsageError(f"{path}: suite lacks the field {err}") from err
    problems = []
    if name != path.stem:
        problems.append(f"name {name!r} differs from the file name {path.stem!r}")
    if task not in TASKS:
        problems.append(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    problems += [f"unknown metric {m!r} (not in metrics.json)" for m in metric_names if m not in metrics]
    if suite.published is not None and not suite.published.is_file():
        problems.append(f"published table {suite.published} not found")
    if problems:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return suite


def load_suites(root: Path | None = None) -> dict[str, Suite]:
    """All suites, by name, validated against the metric catalogue."""
    root = root or evaluation_dir()
    metrics = load_metric_specs(root)
    suites = [_parse_suite(p, metrics) for p in sorted((root / "suites").glob("*.json"))]
    return {s.name: s for s in suites}


def get_suite(name: str) -> Suite:
    suites = load_suites()
    if name not in suites:
        raise UsageError(f"unknown suite {name!r}; known suites: {', '.join(suites)}")
    return suites[name]


def read_published(suite: Suite) -> list[dict[str, str]]:
    """The suite's published reference rows (every row has a source); [] when none are published."""
    if suite.published is None:
        return []
    with suite.published.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != PUBLISHED_COLUMNS:
            raise UsageError(f"{suite.published}: columns must be {', '.join(PUBLISHED_COLUMNS)}")
        rows = list(reader)
    bad = [
        i
        for i, row in enumerate(rows, start=2)
        if not row["source"] or not row["value"] or not row["test_set"]
    ]
    if bad:
        raise UsageError(f"{suite.published}: rows without a value, source or test set on lines {bad}")
    return rows

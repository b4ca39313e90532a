"""Metric registry of `agomni eval`: metric name -> (embedder, which output of it, metric kind, profile).

The metrics are the embedding rows of evaluation/metrics.json: each names its ``network`` (a key of
`EMBEDDERS`), its ``statistic`` (a key of `KINDS`), its ``recipe`` (the default profile) and, where it is
restricted, its ``profiles``; this module holds how to build each network, no list of metric names.

Names. The canonical name of a metric is its catalogue name (evaluation/metrics.json, the names suites
use): ``fd_offline``, ``kad_offline``, ``fd_vggish``, ``fad_vggish``, ``fd_panns``, ``kl_panns``,
``is_panns``, ``fd_passt``, ``kl_passt``, ``fd_clap`` (fadtk ``clap-laion-audio``), ``fd_clap_music``
(fadtk ``clap-laion-music``), ``fad_inf_<embedder>`` (fadtk's FAD-inf, seeded with ``--seed``), plus
``<kind>_<embedder>`` for pairs the catalogue does not list (``fd_mfcc_stats``, ``kad_vggish`` ...).
The spelling ``<kind>-<embedder>`` is accepted and mapped to the canonical name: ``fd-mel-stats`` ->
``fd_offline``, ``kad-mel-stats`` -> ``kad_offline``, ``fd-vggish`` -> ``fd_vggish``,
``fd-clap-laion-audio`` -> ``fd_clap``, ``fad-inf-vggish`` -> ``fad_inf_vggish``. Results always carry
the canonical name. KAD on a network embedder (``kad_vggish`` ...) follows kadtk's estimator and, by
default, the av-benchmark input recipe of that embedder. KL_PaSST in the stable-audio-metrics direction
and windowing is ``kl_passt`` with ``--profile stable-audio-metrics`` (the results say
``KL(gen||ref)``). FD_openl3 of stable-audio-metrics is ``fd_openl3_env`` (its AudioCaps setting) or
``fd_openl3_music`` (MusicCaps, Song Describer), always under that profile; ``kad_openl3_*`` is kadtk's KAD
on the same stereo frame embeddings.

Embedders plug in with one ``EmbedderSpec`` line each: the module and factory (a function or a
``Class.classmethod`` path) that builds the embedder from the registered checkpoint, and the factory
that builds it with seeded random weights (``--random-weights``). Factories get the spec's kwargs, the
profile's ``embedder_options`` and, where their signature accepts them, ``device`` and ``seed``. A metric
whose embedder module is not installed fails with ``NotAvailableYet`` naming the module.

A metric's kind names its accumulator class (`KINDS`); unit, direction and the embedder output it
consumes are read from that class's ``spec`` (`agomni.metrics.base.MetricSpec`), nowhere else.

Checkpoint identity (part of every cache key and of provenance): every network embedder exposes one
``weights`` mapping (`agomni.metrics.embedders.recipes.weights_info`): ``random_weights`` with ``seed``
-> ``"random-weights:<seed>"``; otherwise ``sha256`` trusted as ``trust_class`` ("pinned"/"tofu"; a
record without ``trust_class`` counts as "pinned" only when ``pinned`` is true). A weight-free embedder
(``EmbedderSpec.weights`` False) is keyed ``"none"``. An embedder that should have weights but shows no
hash (e.g. a state dict passed in memory) is refused: its numbers could not be traced.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from agomni.errors import NotAvailableYet, UsageError
from agomni.metrics import (
    FrechetDistance,
    FrechetDistanceInf,
    InceptionScore,
    KernelAudioDistance,
    KLDivergence,
    Metric,
)
from agomni.metrics.base import Head
from agomni.metrics.embedders import Embedder
from agomni.results import CheckpointRecord
from agomni.suites import check_known, load_metric_specs

MetricKind = Literal["fd", "kad", "kl", "is", "fad_inf"]
#: The accumulator class of each metric kind.
KINDS: dict[str, type[Metric]] = {
    "fd": FrechetDistance,
    "kad": KernelAudioDistance,
    "kl": KLDivergence,
    "is": InceptionScore,
    "fad_inf": FrechetDistanceInf,
}


@dataclass(frozen=True)
class EmbedderSpec:
    """How to build one embedder: ``module`` and ``factory(**kwargs)`` (registered checkpoint), and
    ``random_factory(**random_kwargs)`` (seeded random weights; None when not offered); ``weights`` says
    whether it loads a checkpoint at all."""

    name: str
    module: str
    factory: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: bool = True
    random_factory: str | None = None
    random_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricEntry:
    """A metric `agomni eval` computes: its canonical ``name``, ``kind``, ``embedder``, the profile
    used when neither ``--profile`` nor a suite names one, and the only profiles it may run under
    (``profiles``; empty: any)."""

    name: str
    kind: MetricKind
    embedder: EmbedderSpec
    default_profile: str
    profiles: tuple[str, ...] = ()

    @property
    def head(self) -> Head:
        return KINDS[self.kind].spec.head

    @property
    def unit(self) -> str:
        return KINDS[self.kind].spec.unit

    @property
    def higher_is_better(self) -> bool:
        return KINDS[self.kind].spec.higher_is_better

    @property
    def sides(self) -> tuple[str, ...]:
        """The sides the metric reads: generated ("pred") and reference ("ref"), or "pred" only (IS)."""
        return KINDS[self.kind].spec.sides

    @property
    def alias(self) -> str:
        """The ``<kind>-<embedder>`` spelling (``fad_vggish`` -> ``fad-vggish``, ``fad_inf_vggish`` ->
        ``fad-inf-vggish``)."""
        prefix = "fad-inf" if self.kind == "fad_inf" else self.name.split("_", 1)[0]
        return f"{prefix}-{self.embedder.name}"


def _offline(name: str) -> EmbedderSpec:
    return EmbedderSpec(
        name, "agomni.metrics.embedders.offline", "offline_embedder", {"name": name}, weights=False
    )


MEL_STATS, MFCC_STATS = _offline("mel-stats"), _offline("mfcc-stats")
MEL_FRAMES, MFCC_FRAMES = _offline("mel-frames"), _offline("mfcc-frames")
_EMB = "agomni.metrics.embedders"


def _registry_class(name: str, module: str, cls: str, **kwargs: Any) -> EmbedderSpec:
    """An embedder class built by ``cls.from_registry(**kwargs)``, with seeded random weights by
    ``cls.random(**kwargs)``."""
    return EmbedderSpec(
        name,
        f"{_EMB}.{module}",
        f"{cls}.from_registry",
        kwargs,
        random_factory=f"{cls}.random",
        random_kwargs=kwargs,
    )


def _flag_class(name: str, module: str, cls: str, **kwargs: Any) -> EmbedderSpec:
    """An embedder class built by ``cls(**kwargs)``, with seeded random weights by
    ``cls(**kwargs, random_weights=True)``."""
    random_kwargs = {**kwargs, "random_weights": True}
    return EmbedderSpec(
        name, f"{_EMB}.{module}", cls, kwargs, random_factory=cls, random_kwargs=random_kwargs
    )


# One line per network embedder.
VGGISH = _registry_class("vggish", "vggish", "VGGishEmbedder")
PANNS = _registry_class("panns", "panns", "PannsCnn14Embedder", config="panns-cnn14-16k")
PASST = _flag_class("passt", "passt", "PasstEmbedder")
# LAION-CLAP audio embedders as fadtk's ``clap-laion-*`` models use them
CLAP_AUDIO = _flag_class(
    "clap-laion-audio", "clap", "ClapAudioEmbedder", model="630k-audioset-best", profile="fadtk"
)
CLAP_MUSIC = _flag_class(
    "clap-laion-music", "clap", "ClapAudioEmbedder", model="music-audioset-90.14", profile="fadtk"
)
# OpenL3 mel256 512-d of one content type, stereo, as stable-audio-metrics' FD_openl3 uses it
OPENL3_ENV = _registry_class("openl3-env", "openl3", "OpenL3Embedder", content_type="env")
OPENL3_MUSIC = _registry_class("openl3-music", "openl3", "OpenL3Embedder", content_type="music")

#: The embedder of each network name: the ``network`` column of the registry's embedding rows.
EMBEDDERS: dict[str, EmbedderSpec] = {
    spec.name: spec
    for spec in (
        MEL_STATS,
        MFCC_STATS,
        MEL_FRAMES,
        MFCC_FRAMES,
        VGGISH,
        PANNS,
        PASST,
        CLAP_AUDIO,
        CLAP_MUSIC,
        OPENL3_ENV,
        OPENL3_MUSIC,
    )
}


def _registry_entries() -> dict[str, MetricEntry]:
    """One entry per embedding row of evaluation/metrics.json: its statistic, the embedder of its network,
    its recipe as default profile and its profiles; a row naming a network or statistic this module does
    not know is refused, naming the row."""
    check_known("embedding", "network", EMBEDDERS)
    check_known("embedding", "statistic", KINDS)
    return {
        name: MetricEntry(
            name, cast(MetricKind, spec.statistic), EMBEDDERS[spec.network], spec.recipe, spec.profiles
        )
        for name, spec in load_metric_specs().items()
        if spec.family == "embedding"
    }


METRICS: dict[str, MetricEntry] = _registry_entries()
ALIASES: dict[str, str] = {entry.alias: entry.name for entry in METRICS.values()}


def split_names(names: Iterable[str], group: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the names in ``group``, lower-cased; the others as given), each in the given order."""
    wanted = set(group)
    chosen = [n for n in names if n.strip().lower() in wanted]
    return [n.strip().lower() for n in chosen], [n for n in names if n not in chosen]


def availability(name: str) -> tuple[bool, str]:
    """Whether `agomni eval` in this version computes the catalogue metric ``name``: (True, "available",
    with the registry row's note) or (False, why: a module not installed, or the name to use instead)."""
    canonical = ALIASES.get(name, name)
    spec = load_metric_specs().get(canonical)
    if spec is None and canonical not in METRICS:
        return False, "not available in this version: not in the `agomni eval` registry"
    if spec is not None and spec.use_instead:
        return False, f"not available in this version: {spec.use_instead}"
    if spec is not None and spec.family == "validation":
        return False, "computed by `agomni run` for a checkpoint agomni trained, not by `agomni eval`"
    if spec is None or spec.family == "embedding":
        module = METRICS[canonical].embedder.module
        if importlib.util.find_spec(module) is None:
            return False, f"not available in this version: {module} is not installed"
        return True, "available"
    absent = [m for m in spec.requires if importlib.util.find_spec(m) is None]
    if absent:
        extra = "av" if spec.family == "audio_visual" else "speech,phonemes"
        return False, (
            f"not available in this installation: {', '.join(absent)} not installed (pip install 'agomni[{extra}]')"
        )
    return True, "available" + (f" ({spec.note})" if spec.note else "")


def resolve_metric_names(names: Iterable[str]) -> list[MetricEntry]:
    """Registry entries for ``names`` (canonical or ``<kind>-<embedder>`` spelling, any letter case).

    Raises ``UsageError`` for an unknown name (listing the known ones) or a metric named twice, and
    ``NotAvailableYet`` for a catalogue metric this version does not compute (saying what to use).
    """
    entries: list[MetricEntry] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        canonical = ALIASES.get(name, name)
        spec = load_metric_specs().get(canonical)
        if spec is not None and spec.use_instead:
            raise NotAvailableYet(f"metric {raw!r} is not available in this version: {spec.use_instead}")
        if canonical not in METRICS:
            known = ", ".join(f"{e.name} ({e.alias})" for e in METRICS.values())
            raise UsageError(f"unknown metric {raw!r}; known metrics (canonical and alias spelling): {known}")
        entry = METRICS[canonical]
        if entry in entries:
            raise UsageError(f"metric {raw!r} is named twice (canonical name {canonical!r})")
        entries.append(entry)
    if not entries:
        raise UsageError("no metrics named; pass --metrics a,b or --suite NAME")
    return entries


def _factory(spec: EmbedderSpec, path: str) -> Any:
    if importlib.util.find_spec(spec.module) is None:
        raise NotAvailableYet(
            f"the {spec.name!r} embedder ({spec.module}) is not available in this version (module not installed)"
        )
    target: Any = importlib.import_module(spec.module)
    for part in path.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise NotAvailableYet(
                f"{spec.module} has no {path}(); the registry line for {spec.name!r} in "
                "agomni/evaluate/registry.py must name the module's factory"
            )
    return target


def build_embedder(
    spec: EmbedderSpec,
    options: Mapping[str, Any],
    *,
    device: str,
    seed: int,
    random_weights: bool = False,
) -> Embedder:
    """Import ``spec.module`` and call its factory (``random_factory`` when ``random_weights``) with the
    spec's kwargs, ``options`` and, where the factory accepts them, ``device`` and ``seed``.

    Raises ``NotAvailableYet`` when the module or factory does not exist (yet), ``UsageError`` when random
    weights are asked of an embedder without them, a non-CPU device of one that cannot take it, or the
    factory returns no ``Embedder``.
    """
    if random_weights and spec.weights and spec.random_factory is None:
        raise UsageError(f"embedder {spec.name!r} offers no random-weights variant")
    use_random = random_weights and spec.weights
    factory = _factory(spec, spec.random_factory if use_random else spec.factory)
    kwargs = {**(spec.random_kwargs if use_random else spec.kwargs), **options}
    parameters = inspect.signature(factory).parameters
    for name, value in (("device", device), ("seed", seed)):
        if name in parameters and name not in kwargs:
            kwargs[name] = value
    embedder = factory(**kwargs)
    if not isinstance(embedder, Embedder):
        raise UsageError(
            f"{spec.module}.{spec.factory}() returned {type(embedder).__name__}, not an Embedder"
        )
    if device != "cpu" and "device" not in parameters:
        if not callable(getattr(embedder, "to", None)):
            raise UsageError(f"embedder {spec.name!r} runs on the CPU only; got --device {device}")
        embedder.to(device)
    return embedder


@dataclass(frozen=True)
class CheckpointIdentity:
    """``key`` (SHA-256, ``random-weights:<seed>`` or ``none``), the provenance record name and record
    (None for a weight-free embedder), and whether weights are random."""

    key: str
    record_name: str | None
    record: CheckpointRecord | None
    random_weights: bool


def checkpoint_identity(embedder: Embedder, spec: EmbedderSpec) -> CheckpointIdentity:
    """The checkpoint an embedder ran with, from its ``weights`` mapping (see the module docstring)."""
    info = getattr(embedder, "weights", None)
    info = info if isinstance(info, Mapping) else {}
    if info.get("random_weights", False):
        seed = info.get("seed")
        if not isinstance(seed, int):
            raise UsageError(f"embedder {spec.name!r} has random weights but states no integer seed")
        return CheckpointIdentity(
            f"random-weights:{seed}",
            f"{spec.name} (random weights, seed {seed})",
            CheckpointRecord(None, "random-weights"),
            True,
        )
    sha = info.get("sha256")
    if isinstance(sha, str):
        trust = info.get("trust_class") or ("pinned" if info.get("pinned") else "tofu")
        if trust not in ("pinned", "tofu"):
            raise UsageError(f"embedder {spec.name!r}: checkpoint trust {trust!r} is not 'pinned' or 'tofu'")
        return CheckpointIdentity(
            sha, str(info.get("name") or spec.name), CheckpointRecord(sha, trust), False
        )
    if spec.weights:
        raise UsageError(
            f"embedder {spec.name!r} shows no checkpoint SHA-256 (its `weights` record) and no "
            "random-weights seed; its numbers could not be traced"
        )
    return CheckpointIdentity("none", None, None, False)

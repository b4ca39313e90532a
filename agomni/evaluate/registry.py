"""Metric registry of `agomni eval`: metric name -> (embedder, which output of it, metric kind, profile).

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
``KL(gen||ref)``).

Embedders plug in with one ``EmbedderSpec`` line each: the module and factory (a function or a
``Class.classmethod`` path) that builds the embedder from the registered checkpoint, and the factory
that builds it with seeded random weights (``--random-weights``). Factories get the spec's kwargs, the
profile's ``embedder_options`` and, where their signature accepts them, ``device``, ``seed`` and
``recipe`` (the profile's input recipe for that embedder). A metric whose embedder module has not landed
yet fails with ``NotAvailableYet`` naming the module and issue.

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
from typing import Any, Literal

from agomni.errors import NotAvailableYet, UsageError
from agomni.metrics.embedders import Embedder
from agomni.results import CheckpointRecord

MetricKind = Literal["fd", "kad", "kl", "is", "fad_inf"]
Head = Literal["embed", "logits"]

#: Short unit and direction of each metric kind, as evaluation/metrics.json writes them.
KIND_UNITS: dict[str, str] = {"fd": "FD", "kad": "KAD", "kl": "nats", "is": "IS", "fad_inf": "FD"}
KIND_HIGHER_IS_BETTER: dict[str, bool] = {
    "fd": False,
    "kad": False,
    "kl": False,
    "is": True,
    "fad_inf": False,
}
#: Which output of the embedder each kind consumes: embeddings for distances, class logits otherwise.
KIND_HEADS: dict[str, Head] = {
    "fd": "embed",
    "kad": "embed",
    "kl": "logits",
    "is": "logits",
    "fad_inf": "embed",
}
ISSUE_4 = "the general-audio metrics issue (#4)"


@dataclass(frozen=True)
class EmbedderSpec:
    """How to build one embedder: ``module`` and ``factory(**kwargs)`` (registered checkpoint), and
    ``random_factory(**random_kwargs)`` (seeded random weights; None when not offered); ``weights`` says
    whether it loads a checkpoint at all; ``provided_by`` names the work that adds the module."""

    name: str
    module: str
    factory: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: bool = True
    random_factory: str | None = None
    random_kwargs: Mapping[str, Any] = field(default_factory=dict)
    provided_by: str = ISSUE_4


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
        return KIND_HEADS[self.kind]

    @property
    def unit(self) -> str:
        return KIND_UNITS[self.kind]

    @property
    def higher_is_better(self) -> bool:
        return KIND_HIGHER_IS_BETTER[self.kind]

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
# One line per network embedder (module, factory, random-weights factory).
_EMB = "agomni.metrics.embedders"
VGGISH = EmbedderSpec(
    "vggish", f"{_EMB}.vggish", "VGGishEmbedder.from_registry", random_factory="VGGishEmbedder.random"
)
_CNN14_16K = {"config": "panns-cnn14-16k"}
PANNS = EmbedderSpec(
    "panns",
    f"{_EMB}.panns",
    "PannsCnn14Embedder.from_registry",
    kwargs=_CNN14_16K,
    random_factory="PannsCnn14Embedder.random",
    random_kwargs=_CNN14_16K,
)
PASST = EmbedderSpec(
    "passt",
    f"{_EMB}.passt",
    "PasstEmbedder",
    random_factory="PasstEmbedder",
    random_kwargs={"random_weights": True},
)
_CLAP_AUDIO = {"model": "630k-audioset-best", "profile": "fadtk"}
CLAP_AUDIO = EmbedderSpec(
    "clap-laion-audio",
    f"{_EMB}.clap",
    "ClapAudioEmbedder",
    kwargs=_CLAP_AUDIO,
    random_factory="ClapAudioEmbedder",
    random_kwargs={**_CLAP_AUDIO, "random_weights": True},
)
_CLAP_MUSIC = {"model": "music-audioset-90.14", "profile": "fadtk"}
CLAP_MUSIC = EmbedderSpec(
    "clap-laion-music",
    f"{_EMB}.clap",
    "ClapAudioEmbedder",
    kwargs=_CLAP_MUSIC,
    random_factory="ClapAudioEmbedder",
    random_kwargs={**_CLAP_MUSIC, "random_weights": True},
)
FADTK_ONLY = ("fadtk",)

REGISTRY: dict[str, MetricEntry] = {
    entry.name: entry
    for entry in (
        MetricEntry("fd_offline", "fd", MEL_STATS, "agomni-offline"),
        MetricEntry("kad_offline", "kad", MEL_STATS, "agomni-offline"),
        MetricEntry("fd_mfcc_stats", "fd", MFCC_STATS, "agomni-offline"),
        MetricEntry("kad_mfcc_stats", "kad", MFCC_STATS, "agomni-offline"),
        MetricEntry("fd_mel_frames", "fd", MEL_FRAMES, "agomni-offline"),
        MetricEntry("fd_mfcc_frames", "fd", MFCC_FRAMES, "agomni-offline"),
        MetricEntry("fd_vggish", "fd", VGGISH, "av-benchmark"),
        MetricEntry("fad_vggish", "fd", VGGISH, "audioldm-eval"),
        MetricEntry("kad_vggish", "kad", VGGISH, "av-benchmark"),
        MetricEntry("fd_panns", "fd", PANNS, "av-benchmark"),
        MetricEntry("kad_panns", "kad", PANNS, "av-benchmark"),
        MetricEntry("kl_panns", "kl", PANNS, "av-benchmark"),
        MetricEntry("is_panns", "is", PANNS, "av-benchmark"),
        MetricEntry("fd_passt", "fd", PASST, "av-benchmark"),
        MetricEntry("kad_passt", "kad", PASST, "av-benchmark"),
        MetricEntry("kl_passt", "kl", PASST, "av-benchmark"),
        MetricEntry("is_passt", "is", PASST, "av-benchmark"),
        MetricEntry("fd_clap", "fd", CLAP_AUDIO, "fadtk", FADTK_ONLY),
        MetricEntry("fd_clap_music", "fd", CLAP_MUSIC, "fadtk", FADTK_ONLY),
        MetricEntry("fad_inf_vggish", "fad_inf", VGGISH, "fadtk"),
        MetricEntry("fad_inf_clap", "fad_inf", CLAP_AUDIO, "fadtk", FADTK_ONLY),
        MetricEntry("fad_inf_clap_music", "fad_inf", CLAP_MUSIC, "fadtk", FADTK_ONLY),
        MetricEntry("fad_inf_mel_frames", "fad_inf", MEL_FRAMES, "agomni-offline"),
    )
}
ALIASES: dict[str, str] = {entry.alias: entry.name for entry in REGISTRY.values()}

# Catalogue metrics that are not embedding-distance/classifier metrics: not computed by this pipeline.
OUTSIDE_PIPELINE: dict[str, str] = {
    "clap": "the CLAP audio-text score issue (not filed yet): it needs the CLAP text branch and the manifest's text",
    "ib_score": "the ImageBind audio-video score (the audio-video metrics issue)",
    "desync": "the Synchformer DeSync metric (the audio-video metrics issue)",
    "wer": "the speech metrics issue (WER)",
    "sim_o": "the speech metrics issue (SIM-o)",
    "lse_c": "the lip-sync metrics issue (SyncNet)",
    "lse_d": "the lip-sync metrics issue (SyncNet)",
}


def availability(name: str) -> tuple[bool, str]:
    """Whether `agomni eval` in this version computes the catalogue metric ``name``: (True, "available")
    or (False, why and which work brings it)."""
    canonical = ALIASES.get(name, name)
    if canonical in REGISTRY:
        spec = REGISTRY[canonical].embedder
        if importlib.util.find_spec(spec.module) is None:
            return False, f"pending: {spec.module} lands with {spec.provided_by}"
        return True, "available"
    if canonical in OUTSIDE_PIPELINE:
        return False, f"pending: {OUTSIDE_PIPELINE[canonical]}"
    return False, "pending: not in the `agomni eval` registry"


def resolve_metric_names(names: Iterable[str]) -> list[MetricEntry]:
    """Registry entries for ``names`` (canonical or ``<kind>-<embedder>`` spelling, any letter case).

    Raises ``UsageError`` for an unknown name (listing the known ones) or a metric named twice, and
    ``NotAvailableYet`` for a catalogue metric this pipeline does not compute yet (saying which work
    provides it).
    """
    entries: list[MetricEntry] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        canonical = ALIASES.get(name, name)
        if canonical in OUTSIDE_PIPELINE:
            raise NotAvailableYet(
                f"metric {raw!r} is not computed by `agomni eval` yet: it lands with {OUTSIDE_PIPELINE[canonical]}"
            )
        if canonical not in REGISTRY:
            known = ", ".join(f"{e.name} ({e.alias})" for e in REGISTRY.values())
            raise UsageError(f"unknown metric {raw!r}; known metrics (canonical and alias spelling): {known}")
        entry = REGISTRY[canonical]
        if entry in entries:
            raise UsageError(f"metric {raw!r} is named twice (canonical name {canonical!r})")
        entries.append(entry)
    if not entries:
        raise UsageError("no metrics named; pass --metrics a,b or --suite NAME")
    return entries


def _factory(spec: EmbedderSpec, path: str) -> Any:
    if importlib.util.find_spec(spec.module) is None:
        raise NotAvailableYet(
            f"the {spec.name!r} embedder ({spec.module}) is not available yet: it lands with {spec.provided_by}"
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
    recipe: str,
    random_weights: bool = False,
) -> Embedder:
    """Import ``spec.module`` and call its factory (``random_factory`` when ``random_weights``) with the
    spec's kwargs, ``options`` and, where the factory accepts them, ``device``, ``seed`` and ``recipe``.

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
    for name, value in (("device", device), ("seed", seed), ("recipe", recipe)):
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

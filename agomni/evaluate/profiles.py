"""Profiles: the reference recipes `agomni eval` can follow, as data.

A profile fixes every choice outside the embedder's own network that changes a number: the input recipe
per embedder (how a file becomes the embedder's waveform: downmix, DC removal, resampler, crop, minimum
length, int16 quantisation, peak normalisation; `agomni.io.prepare`), how frame-level embeddings are
pooled for the Frechet distance, the dtype embeddings are kept in, the KL direction, the Inception
Score's splits and shuffle seed, and which items each metric uses when generated and reference ids
differ (``--allow-missing``; `Profile.uses`). Every run writes its profile (``Profile.to_dict``, with
``notes`` on where agomni is not exact) into ``provenance.settings.profiles``, each embedder's
input recipe (with its own ``notes``) into ``provenance.settings.embedders[...]["preprocessing"]``,
and the profile's name into each ``SetMetric.profile``.

Unpaired items (ids with a file on one side only, allowed by ``--allow-missing``): av-benchmark
(``av_bench/evaluate.py``) computes FD-VGGish and FD-PANNs over all clips of each side, FD-PaSST and KL
over the pairs only, and IS over all generated clips; audioldm_eval and stable-audio-metrics compute
their FDs over each whole folder, KL over the pairs and IS over all generated clips; fadtk and kadtk
compare whole sets. agomni's own offline profile uses the pairs only, for every metric.

Sources (the toolkits' code): av-benchmark loads with torchaudio, averages channels,
subtracts the mean, resamples with ``torchaudio.transforms.Resample`` (agomni policy ``torchaudio-sinc``)
and keeps the first ``--audio_length`` seconds of every file, for every metric (VGGish, PANNs, PaSST);
the option has no default: 8 s is the value MMAudio's evaluation command passes, and this profile's;
KL(ref||gen); IS with RandomState(2020), 10 splits; PaSST input padded/cropped to exactly 10 s.
stable-audio-metrics loads with ``librosa.load(sr=..., mono=True)`` (soxr HQ: policy ``soxr-hq``), peak
normalises to -1 dBFS, windows PaSST over 10 s every 5 s and reports KL(gen||ref): ``kl_passt`` with
``--profile stable-audio-metrics`` is its KL_PaSST. fadtk (default ``TORCHAUDIO_RESAMPLING``) averages
channels, resamples with torchaudio's kaiser-best sinc, stores 16-bit PCM, pads clips shorter than a
model's minimum (VGGish 1 s) with zeros, pools every frame / chunk embedding for the FD and stores
embeddings as float16. audioldm_eval keeps the first channel and resamples with
``torchaudio.functional.resample``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from agomni.errors import UsageError
from agomni.io.prepare import AV_BENCHMARK_AUDIO_LENGTH_S, FADTK_MIN_SECONDS, RECIPES, Recipe, recipe

Pooling = Literal["frames", "clip-mean"]
EmbeddingDtype = Literal["float32", "float16"]
Uses = Literal["all", "pairs"]
#: Which items a metric kind uses under unpaired ids, unless a profile says otherwise: set distances
#: compare each whole side, KL needs pairs, IS scores every generated clip.
DEFAULT_USES: dict[str, Uses] = {"fd": "all", "kad": "all", "fad_inf": "all", "kl": "pairs", "is": "all"}


@dataclass(frozen=True)
class Profile:
    """One reference recipe (see the module docstring). ``recipe`` names the input recipe
    (`agomni.io.prepare.RECIPES`); ``pooling`` is keyed by embedder name; ``embedder_options`` are
    keyword arguments for an embedder's factory; ``embedding_dtype`` "float16" rounds every embedding to
    float16 before the metric sees it (fadtk); ``uses`` maps a metric kind or name to the items it uses
    when ids are unpaired (over `DEFAULT_USES`)."""

    name: str
    title: str
    recipe: str
    kl_direction: Literal["ref_gen", "gen_ref"] = "ref_gen"
    is_splits: int = 10
    is_seed: int = 2020
    is_shuffle: bool = True
    pooling: Mapping[str, Pooling] = field(default_factory=dict)
    embedder_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    embedding_dtype: EmbeddingDtype = "float32"
    uses: Mapping[str, Uses] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise UsageError(f"profile {self.name!r}: unknown input recipe {self.recipe!r}")
        for key in ("pooling", "embedder_options", "uses"):
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))

    @property
    def downmix(self) -> str:
        """The input recipe's downmix policy (agomni.io name)."""
        return RECIPES[self.recipe].downmix

    @property
    def resampler(self) -> str:
        """The input recipe's resampler (agomni.io policy name)."""
        return RECIPES[self.recipe].resampler

    def recipe_for(self, embedder: str) -> Recipe:
        """The input recipe for ``embedder``: av-benchmark keeps the first 8 s of every file (the
        ``--audio_length`` MMAudio's evaluation passes), fadtk pads VGGish input to 1 s (``min_len``)."""
        if self.recipe == "av-benchmark":
            return recipe(self.recipe, max_seconds=AV_BENCHMARK_AUDIO_LENGTH_S)
        if self.recipe == "fadtk":
            return recipe(self.recipe, min_seconds=FADTK_MIN_SECONDS.get(embedder))
        if self.recipe == "stable-audio-metrics" and embedder.startswith("openl3"):
            return recipe("stable-audio-metrics-openl3")
        return recipe(self.recipe)

    def uses_for(self, metric: str, kind: str) -> Uses:
        """Which items metric ``metric`` (of ``kind``) uses when ids are unpaired: "all" of each side
        or only the "pairs"."""
        return self.uses.get(metric, self.uses.get(kind, DEFAULT_USES[kind]))

    def pooling_for(self, embedder: str) -> Pooling:
        """How frame-level embeddings enter FD/KAD: every frame a row (default) or one mean row per clip."""
        return self.pooling.get(embedder, "frames")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "recipe": RECIPES[self.recipe].to_dict(),
            "downmix": self.downmix,
            "resampler": self.resampler,
            "kl_direction": self.kl_direction,
            "is": {"splits": self.is_splits, "seed": self.is_seed, "shuffle": self.is_shuffle},
            "uses_when_unpaired": {**DEFAULT_USES, **self.uses},
            "pooling": dict(self.pooling),
            "embedder_options": {name: dict(opts) for name, opts in self.embedder_options.items()},
            "embedding_dtype": self.embedding_dtype,
            "notes": self.notes,
        }


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="av-benchmark",
            title="av-benchmark (MMAudio / Kling-Foley V2A tables)",
            recipe="av-benchmark",
            pooling={"vggish": "frames"},
            uses={"fd_passt": "pairs"},
            notes="every file: channel mean, DC removed, torchaudio-sinc resampling, first 8 s "
            "(--audio_length has no default in av-benchmark; 8 is what MMAudio's evaluation command "
            "passes); PaSST pads its input to 10 s. Unpaired ids: FD-VGGish/FD-PANNs over all clips of "
            "each side, FD-PaSST and KL over the pairs, IS over all generated clips.",
        ),
        Profile(
            name="audioldm-eval",
            title="audioldm_eval (AudioLDM-family T2A tables)",
            recipe="audioldm-eval",
            pooling={"vggish": "frames"},
            notes="first channel, DC removed, torchaudio.functional.resample, zero-padded to 32000 samples. "
            "KL/IS as av-benchmark, which took them from audioldm_eval.",
        ),
        Profile(
            name="stable-audio-metrics",
            title="stable-audio-metrics (Stable Audio tables)",
            recipe="stable-audio-metrics",
            kl_direction="gen_ref",
            embedder_options={"passt": {"segment_rule": "windows-10s-hop-5s"}},
            notes="librosa.load(sr=..., mono=True) resamples with soxr HQ by default; peak normalised to "
            "-1 dBFS; PaSST logits averaged over 10 s windows every 5 s; KL(gen||ref) with "
            "log(p_ref + 1e-6). OpenL3 (src/openl3_fd.py, batched path): recipe stable-audio-metrics-openl3 "
            "(peak -1 dBFS before soxr HQ to 44.1 kHz, first two channels, mono as both), openl3 mel256 "
            "512-d every 0.5 s per channel, L|R concatenated, every frame one FD row.",
        ),
        Profile(
            name="fadtk",
            title="fadtk / kadtk (FAD and KAD over many embedders)",
            recipe="fadtk",
            pooling={"vggish": "frames", "clap-laion-audio": "frames", "clap-laion-music": "frames"},
            embedding_dtype="float16",
            notes="fadtk's loader (TORCHAUDIO_RESAMPLING): channel mean, torchaudio kaiser-best sinc "
            "(exact), 16-bit PCM round trip (agomni: FFmpeg-style round and saturate; fadtk: whichever "
            "torchaudio backend writes the file, can differ by one LSB), VGGish padded to 1 s; every "
            "frame / 10 s chunk embedding pooled; embeddings rounded to float16 as fadtk caches them. "
            "fadtk has no PANNs/PaSST model: for those the same loader is applied, not a fadtk recipe.",
        ),
        Profile(
            name="agomni-offline",
            title="agomni offline spectral embedders (no weights; not comparable with published numbers)",
            recipe="agomni-offline",
            uses=dict.fromkeys(DEFAULT_USES, "pairs"),
            notes="agomni's own embedders; with unpaired ids every metric uses the pairs only.",
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or ``UsageError`` listing the known ones."""
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]

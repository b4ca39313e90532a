"""Profiles: the reference recipes `agomni eval` can follow, as data.

A profile fixes every choice outside the embedder's own network that changes a number: the input recipe
(how a file becomes the embedder's waveform: downmix, DC removal, resampler, crop, minimum length, int16
quantisation, peak normalisation; `agomni.metrics.embedders.recipes`), crop/pad per embedder after it,
how frame-level embeddings are pooled for the Frechet distance, the dtype embeddings are kept in, the KL
direction, and the Inception Score's splits and shuffle seed. Every run writes its profile
(``Profile.to_dict``, with ``notes`` on where agomni is not exact) into
``provenance.preprocessing["profiles"]``, each embedder's input recipe (with its own ``notes``) into
``provenance.preprocessing["embedders"][...]["preprocessing"]``, and the profile's name into each
``SetMetric.profile``.

Sources (PROTOCOLS.md and the toolkits' code): av-benchmark loads with torchaudio, averages channels,
subtracts the mean, resamples with ``torchaudio.transforms.Resample`` (agomni policy ``torchaudio-sinc``)
and keeps the first ``--audio_length`` = 8 s of every file, for every metric (VGGish, PANNs, PaSST);
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
from agomni.metrics.embedders.recipes import INPUT_RECIPES, InputRecipe, recipe_for_embedder

Pooling = Literal["frames", "clip-mean"]
EmbeddingDtype = Literal["float32", "float16"]
PadMode = Literal["zero", "repeat"]


@dataclass(frozen=True)
class CropPad:
    """Length policy applied after resampling: pad (with zeros, or by repeating the clip) to at least
    ``min_s`` seconds, or pad and crop (keeping the start, deterministic) to exactly ``exact_s``."""

    exact_s: float | None = None
    min_s: float | None = None
    pad: PadMode = "zero"

    def to_dict(self) -> dict[str, Any]:
        return {"exact_s": self.exact_s, "min_s": self.min_s, "pad": self.pad, "crop": "keep the start"}


NO_CROP_PAD = CropPad()


@dataclass(frozen=True)
class Profile:
    """One reference recipe (see the module docstring). ``recipe`` names the input recipe
    (`agomni.metrics.embedders.recipes.INPUT_RECIPES`); ``crop_pad`` and ``pooling`` are keyed by
    embedder name; ``embedder_options`` are keyword arguments for an embedder's factory;
    ``embedding_dtype`` "float16" rounds every embedding to float16 before the metric sees it (fadtk)."""

    name: str
    title: str
    recipe: str
    kl_direction: Literal["ref_gen", "gen_ref"] = "ref_gen"
    is_splits: int = 10
    is_seed: int = 2020
    is_shuffle: bool = True
    crop_pad: Mapping[str, CropPad] = field(default_factory=dict)
    pooling: Mapping[str, Pooling] = field(default_factory=dict)
    embedder_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    embedding_dtype: EmbeddingDtype = "float32"
    notes: str = ""

    def __post_init__(self) -> None:
        if self.recipe not in INPUT_RECIPES:
            raise UsageError(f"profile {self.name!r}: unknown input recipe {self.recipe!r}")
        for key in ("crop_pad", "pooling", "embedder_options"):
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))

    @property
    def downmix(self) -> str:
        """The input recipe's downmix policy (agomni.io name)."""
        return INPUT_RECIPES[self.recipe].downmix

    @property
    def resampler(self) -> str:
        """The input recipe's resampler (agomni.io policy name, or the fadtk kaiser-best sinc)."""
        return INPUT_RECIPES[self.recipe].resampler

    def input_recipe_for(self, embedder: str) -> InputRecipe:
        """The input recipe for ``embedder`` (av-benchmark: first 8 s; fadtk: VGGish padded to 1 s)."""
        return recipe_for_embedder(self.recipe, embedder)

    def crop_pad_for(self, embedder: str) -> CropPad:
        return self.crop_pad.get(embedder, NO_CROP_PAD)

    def pooling_for(self, embedder: str) -> Pooling:
        """How frame-level embeddings enter FD/KAD: every frame a row (default) or one mean row per clip."""
        return self.pooling.get(embedder, "frames")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "recipe": INPUT_RECIPES[self.recipe].to_dict(),
            "downmix": self.downmix,
            "resampler": self.resampler,
            "kl_direction": self.kl_direction,
            "is": {"splits": self.is_splits, "seed": self.is_seed, "shuffle": self.is_shuffle},
            "crop_pad": {name: spec.to_dict() for name, spec in self.crop_pad.items()},
            "pooling": dict(self.pooling),
            "embedder_options": {name: dict(opts) for name, opts in self.embedder_options.items()},
            "embedding_dtype": self.embedding_dtype,
            "notes": self.notes,
        }


_PASST_10S = CropPad(exact_s=10.0, pad="zero")

PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="av-benchmark",
            title="av-benchmark (MMAudio / Kling-Foley V2A tables)",
            recipe="av-benchmark",
            crop_pad={"passt": _PASST_10S},
            pooling={"vggish": "frames"},
            notes="every file: channel mean, DC removed, torchaudio-sinc resampling, first 8 s "
            "(av-benchmark --audio_length default); PaSST input then zero-padded to 10 s.",
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
            "log(p_ref + 1e-6).",
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
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or ``UsageError`` listing the known ones."""
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]

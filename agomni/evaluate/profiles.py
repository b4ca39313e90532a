"""Profiles: the reference recipes `agomni eval` can follow, as data.

A profile fixes every choice outside the embedder's own network that changes a number: how audio is
downmixed and resampled to the embedder's rate, crop/pad per embedder, how frame-level embeddings are
pooled for the Frechet distance, the KL direction, and the Inception Score's splits and shuffle seed.
Every run writes its profile (``Profile.to_dict``) into ``provenance.preprocessing["profiles"]`` and
the profile's name into each ``SetMetric.profile``.

Sources (PROTOCOLS.md and the toolkits' code): av-benchmark loads with torchaudio, averages channels
and resamples with ``torchaudio.transforms.Resample`` (agomni policy ``torchaudio-sinc``); KL(ref||gen);
IS with RandomState(2020), 10 splits; PaSST input padded/cropped to exactly 10 s. stable-audio-metrics
loads with ``librosa.load(sr=...)``, whose default resampler is soxr HQ (policy ``soxr-hq``), and
reports KL(gen||ref). fadtk converts files to the model's rate with ffmpeg beforehand and pads clips
shorter than the model's minimum (VGGish 1 s) with zeros; ffmpeg's resampler is not one of agomni's
policies, so the profile uses ``torchaudio-sinc`` and says so in ``notes``. audioldm_eval's own loader
is not reproduced either (``notes``); its KL/IS code is the one av-benchmark copied.

Embedders that carry their own input recipe (VGGish and PANNs: ``recipe`` and ``load``, with the
av-benchmark and audioldm-eval recipes) are built with ``recipe=<profile name>`` and prepare their audio
themselves; the profile's downmix/resampler/crop_pad then do not apply to them, and the run's provenance
records the embedder's recipe instead (``agomni.evaluate.preprocess.EmbedderLoader``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from agomni.errors import UsageError
from agomni.io.resample import RESAMPLE_POLICIES, SOXR_QUALITIES, TORCHAUDIO_SINC

Pooling = Literal["frames", "clip-mean"]
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
    """One reference recipe (see the module docstring). ``crop_pad`` and ``pooling`` are keyed by
    embedder name; ``embedder_options`` are keyword arguments for an embedder's factory."""

    name: str
    title: str
    downmix: str = "mean"
    resampler: str = TORCHAUDIO_SINC
    kl_direction: Literal["ref_gen", "gen_ref"] = "ref_gen"
    is_splits: int = 10
    is_seed: int = 2020
    is_shuffle: bool = True
    crop_pad: Mapping[str, CropPad] = field(default_factory=dict)
    pooling: Mapping[str, Pooling] = field(default_factory=dict)
    embedder_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.resampler not in RESAMPLE_POLICIES:
            raise UsageError(f"profile {self.name!r}: unknown resampler {self.resampler!r}")
        for key in ("crop_pad", "pooling", "embedder_options"):
            object.__setattr__(self, key, MappingProxyType(dict(getattr(self, key))))

    def crop_pad_for(self, embedder: str) -> CropPad:
        return self.crop_pad.get(embedder, NO_CROP_PAD)

    def pooling_for(self, embedder: str) -> Pooling:
        """How frame-level embeddings enter FD/KAD: every frame a row (default) or one mean row per clip."""
        return self.pooling.get(embedder, "frames")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "downmix": self.downmix,
            "resampler": self.resampler,
            "kl_direction": self.kl_direction,
            "is": {"splits": self.is_splits, "seed": self.is_seed, "shuffle": self.is_shuffle},
            "crop_pad": {name: spec.to_dict() for name, spec in self.crop_pad.items()},
            "pooling": dict(self.pooling),
            "embedder_options": {name: dict(opts) for name, opts in self.embedder_options.items()},
            "notes": self.notes,
        }


_PASST_10S = CropPad(exact_s=10.0, pad="zero")

PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="av-benchmark",
            title="av-benchmark (MMAudio / Kling-Foley V2A tables)",
            crop_pad={"passt": _PASST_10S},
            pooling={"vggish": "frames"},
        ),
        Profile(
            name="audioldm-eval",
            title="audioldm_eval (AudioLDM-family T2A tables)",
            pooling={"vggish": "frames"},
            notes="audio loading/resampling as av-benchmark (torchaudio-sinc); audioldm_eval's own loader "
            "is not reproduced. KL/IS as av-benchmark, which took them from audioldm_eval.",
        ),
        Profile(
            name="stable-audio-metrics",
            title="stable-audio-metrics (Stable Audio tables)",
            resampler=next(name for name, q in SOXR_QUALITIES.items() if q == "HQ"),
            kl_direction="gen_ref",
            embedder_options={"passt": {"segment_rule": "windows-10s-hop-5s"}},
            notes="librosa.load(sr=...) resamples with soxr HQ by default; KL(gen||ref) with log(p_ref + 1e-6).",
        ),
        Profile(
            name="fadtk",
            title="fadtk / kadtk (FAD and KAD over many embedders)",
            pooling={"vggish": "frames"},
            notes="fadtk resamples with ffmpeg before embedding; agomni uses torchaudio-sinc instead, so "
            "numbers can differ slightly from fadtk's. VGGish/PANNs keep their own input recipes, which "
            "exist for av-benchmark and audioldm-eval only.",
        ),
        Profile(
            name="agomni-offline",
            title="agomni offline spectral embedders (no weights; not comparable with published numbers)",
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or ``UsageError`` listing the known ones."""
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]

"""What every audio-visual scorer does first: decode an item's video and audio, or record why it cannot.

`ItemResult` is the common part of the per-item results (id, notes, error); `decode` decodes the video
(PyAV, at the metric's frame rate and size, `MediaRecipe`) and the audio (the video's own track or a
separate file, mono, at the metric's rate) and returns any media problem as text instead of raising, so it
can run in a worker process; `AVScorer` turns that into the item's notes or `error` and hands the decoded
pair to each scorer's own `score_pair`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import torch

from agomni.errors import AgomniError
from agomni.io.audio import load_audio
from agomni.io.records import AudioRecord, VideoRecord
from agomni.io.resample import TORCHAUDIO_SINC
from agomni.io.video import load_video

RANDOM_WEIGHTS_NOTE = "random weights: for tests and latency only, not a measurement"


@dataclass
class ItemResult:
    """`error` is None when the item was scored, else the reason it was not (and it has no scores), and
    `error_side` the input at fault ("video" or "generated")."""

    item_id: str
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    error_side: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ItemT = TypeVar("ItemT", bound=ItemResult)


@dataclass(frozen=True)
class Pair:
    frames: torch.Tensor  # uint8 (T, 3, H, W)
    video: VideoRecord
    waveform: torch.Tensor  # float32 (1, samples)
    audio: AudioRecord


@dataclass(frozen=True)
class MediaRecipe:
    """How a metric decodes an item: video frame rate (fps) and size (shorter side px, None: native), audio
    rate (Hz), downmix and resampler policies (`agomni.io`)."""

    fps: float
    sample_rate: int
    size: int | None = None
    downmix: str = "mean"
    resampler: str = TORCHAUDIO_SINC


@dataclass(frozen=True)
class Decoded:
    """What `decode` returns (picklable, so it can come from a worker process): the pair or the error and
    the side at fault ("video", or "generated" for a separate audio file)."""

    pair: Pair | None
    error: str | None
    error_side: str = ""


def decode(
    recipe: MediaRecipe, video: str | os.PathLike[str], audio: str | os.PathLike[str] | None = None
) -> Decoded:
    """Decode `video` (see `agomni.io.video.load_video`) and `audio` (default: the video's own track, silent
    audio allowed) per `recipe`; a media error is returned as the error text, never raised."""
    try:
        frames, video_record = load_video(video, fps=recipe.fps, size=recipe.size)
    except AgomniError as err:
        return Decoded(None, str(err), "video")
    try:
        waveform, audio_record = load_audio(
            audio or video,
            sample_rate=recipe.sample_rate,
            downmix=recipe.downmix,
            resampler=recipe.resampler,
            allow_silence=True,
        )
    except AgomniError as err:
        return Decoded(None, str(err), "video" if audio is None else "generated")
    return Decoded(Pair(frames, video_record, waveform, audio_record), None)


class AVScorer(Generic[ItemT]):
    """What the audio-visual scorers share: `score` decodes an item (`decode` with the scorer's `media`)
    and `score_decoded` starts its result (`item_type`, with the random-weights note, the silent-audio
    note or the media error) before the scorer's own `score_pair` fills in the rest."""

    media: MediaRecipe
    item_type: type[ItemT]
    recipe: str
    random_weights: bool

    def describe(self, **settings: Any) -> dict[str, Any]:
        """The scorer's config (everything that determines its numbers): recipe, the video and audio rates
        it decodes at, its own ``settings``, and whether its weights are random."""
        return {
            "recipe": self.recipe,
            "video_fps": self.media.fps,
            "audio_sample_rate": self.media.sample_rate,
            **settings,
            "random_weights": self.random_weights,
        }

    def score(
        self, video: str | os.PathLike[str], item_id: str, audio: str | os.PathLike[str] | None = None
    ) -> ItemT:
        """One item: `video` with its own audio track, or with `audio`; media problems become its `error`."""
        return self.score_decoded(item_id, decode(self.media, video, audio))

    def score_decoded(self, item_id: str, decoded: Decoded) -> ItemT:
        """The item from its decode (`decode` with `media`, maybe done in a worker process)."""
        item = self.item_type(item_id=item_id)
        if self.random_weights:
            item.notes.append(RANDOM_WEIGHTS_NOTE)
        if decoded.pair is None:
            item.error, item.error_side = decoded.error, decoded.error_side
            return item
        if decoded.pair.audio.peak_abs == 0.0:
            item.notes.append("the audio is all zeros")
        self.score_pair(item, decoded.pair)
        return item

    def score_pair(self, item: ItemT, pair: Pair) -> None:
        """Fill in `item` (scores, or `error` with the reason) from the decoded pair."""
        raise NotImplementedError

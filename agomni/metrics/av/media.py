"""What every audio-visual scorer does first: decode an item's video and audio, or record why it cannot.

`ItemResult` is the common part of the per-item results (id, notes, error); `decode` decodes the video
(PyAV, at the metric's frame rate and size, `MediaRecipe`) and the audio (the video's own track or a
separate file, mono, at the metric's rate) and returns any media problem as text instead of raising, so it
can run in a worker process; `start_item` turns that into the item's notes or `error`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from agomni.errors import AgomniError
from agomni.io.audio import load_audio
from agomni.io.records import AudioRecord, VideoRecord
from agomni.io.resample import TORCHAUDIO_SINC
from agomni.io.video import load_video

RANDOM_WEIGHTS_NOTE = "random weights: for tests and latency only, not a measurement"


@dataclass
class ItemResult:
    """`error` is None when the item was scored, else the reason it was not (and it has no scores)."""

    item_id: str
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """What `decode` returns (picklable, so it can come from a worker process): the pair or the error."""

    pair: Pair | None
    error: str | None


def decode(
    recipe: MediaRecipe, video: str | os.PathLike[str], audio: str | os.PathLike[str] | None = None
) -> Decoded:
    """Decode `video` (see `agomni.io.video.load_video`) and `audio` (default: the video's own track, silent
    audio allowed) per `recipe`; a media error is returned as the error text, never raised."""
    try:
        frames, video_record = load_video(video, fps=recipe.fps, size=recipe.size)
        waveform, audio_record = load_audio(
            audio or video,
            sample_rate=recipe.sample_rate,
            downmix=recipe.downmix,
            resampler=recipe.resampler,
            allow_silence=True,
        )
    except AgomniError as err:
        return Decoded(None, str(err))
    return Decoded(Pair(frames, video_record, waveform, audio_record), None)


def start_item(item: ItemResult, decoded: Decoded, *, random_weights: bool) -> Pair | None:
    """Notes and error of a fresh item from its decode: the random-weights label, silent audio, or the
    media error (then None)."""
    if random_weights:
        item.notes.append(RANDOM_WEIGHTS_NOTE)
    if decoded.pair is None:
        item.error = decoded.error
        return None
    if decoded.pair.audio.peak_abs == 0.0:
        item.notes.append("the audio is all zeros")
    return decoded.pair

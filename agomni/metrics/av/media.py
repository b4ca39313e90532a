"""What every audio-visual scorer does first: decode an item's video and audio, or record why it cannot.

`ItemResult` is the common part of the per-item results (id, notes, error); `load_pair` decodes the video
(PyAV, at the metric's frame rate and size) and the audio (the video's own track or a separate file,
mono, at the metric's rate) and turns any media problem into the item's `error` instead of an exception.
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


def load_pair(
    item: ItemResult,
    video: str | os.PathLike[str],
    audio: str | os.PathLike[str] | None,
    *,
    random_weights: bool,
    fps: float,
    sample_rate: int,
    size: int | None = None,
    downmix: str = "mean",
    resampler: str = TORCHAUDIO_SINC,
) -> Pair | None:
    """Decode `video` (see `agomni.io.video.load_video`) and `audio` (default: the video's own track); on a
    media error set ``item.error`` and return None. Silent audio is scored, with a note."""
    if random_weights:
        item.notes.append(RANDOM_WEIGHTS_NOTE)
    try:
        frames, video_record = load_video(video, fps=fps, size=size)
        waveform, audio_record = load_audio(
            audio or video, sample_rate=sample_rate, downmix=downmix, resampler=resampler, allow_silence=True
        )
    except AgomniError as err:
        item.error = str(err)
        return None
    if audio_record.peak_abs == 0.0:
        item.notes.append("the audio is all zeros")
    return Pair(frames, video_record, waveform, audio_record)

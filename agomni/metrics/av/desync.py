"""DeSync: the audio-video offset Synchformer predicts, in seconds (av-benchmark / MMAudio recipe).

Recipe (hkchengrex/av-benchmark ``extract_video.py``, ``av_bench/extract.py``, ``av_bench/evaluate.py``):

* Video: 25 fps (FFmpeg ``fps`` filter), the first 25 x duration frames, shorter side 224 (bicubic,
  antialiased, uint8), centre crop 224, (x / 255 - 0.5) / 0.5; 16-frame segments every 8 frames
  (`agomni.model.encoders.synchformer`, the same code as the reference model's sync stream).
* Audio: mono (channel mean), 16 kHz (torchaudio sinc resampler), the first 16000 x duration samples (no DC
  removal); 10240-sample segments every 5120; ``MelSpectrogram(16000, n_fft=1024, win_length=400,
  hop_length=160, n_mels=128)`` power 2; log(x + 1e-6); padded (zeros) or cut to 66 frames;
  (x + 4.2677393) / (2 x 4.5689974).
* Offsets: the first 14 and the last 14 segments (4.8 s each) of both streams go through the offset head;
  argmax over 21 classes on the grid linspace(-2, 2, 21) s (0.2 s steps).
* DeSync of an item = mean of |offset| over its two windows; of a set = mean over items (av-benchmark
  averages the |offset| of all windows of all items, which is the same number when every item has two).

Batching (on the scorer's device): MotionFormer takes `batch_size` video segments per call (default 8;
23 segments for 8 s), the audio trunk all segments of an item in one call, the offset head both windows
in one call. Each input moves to the device once; the batch size does not change the numbers (to float32
rounding).

Items shorter than the duration (the reference's default 8 s) in either stream are per-item errors with
the reason (av-benchmark logs them and moves to another file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchaudio

from agomni import weights
from agomni.errors import UsageError
from agomni.metrics.av.media import AVScorer, ItemResult, MediaRecipe, Pair
from agomni.metrics.av.synchformer_offsets import Synchformer
from agomni.metrics.embedders.common import pad_or_crop
from agomni.model.config import SequenceConfig
from agomni.model.encoders.synchformer import SYNC_SIZE, SYNCHFORMER_WEIGHTS, SynchformerEncoder

VIDEO_FPS = 25
SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 10240
SEGMENT_STEP = 5120
MEL_FRAMES = 66
MEL_MEAN = -4.2677393
MEL_STD = 4.5689974
OFFSET_GRID = torch.from_numpy(np.linspace(-2.0, 2.0, 21)).float()  # as make_class_grid (0 is exact)
RECIPE = "av-benchmark"
DEFAULT_DURATION = 8.0
BATCH_SEGMENTS = 8  # MotionFormer video segments per call (module docstring)
MEDIA = MediaRecipe(fps=VIDEO_FPS, sample_rate=SAMPLE_RATE, size=SYNC_SIZE)


def audio_segments(waveform: torch.Tensor) -> torch.Tensor:
    """(B, samples) -> (B, S, 10240) with S = (samples - 10240) // 5120 + 1."""
    count = (waveform.shape[-1] - SEGMENT_SAMPLES) // SEGMENT_STEP + 1
    if count < 1:
        raise UsageError(f"{waveform.shape[-1]} samples hold no {SEGMENT_SAMPLES}-sample segment")
    return waveform.unfold(-1, SEGMENT_SAMPLES, SEGMENT_STEP)[:, :count]


_MEL = torchaudio.transforms.MelSpectrogram(
    sample_rate=SAMPLE_RATE, n_fft=1024, win_length=400, hop_length=160, n_mels=128
)


def log_mel_segments(segments: torch.Tensor) -> torch.Tensor:
    """(B, S, 10240) -> normalised log-mel (B, S, 66 frames, 128 mel) as Synchformer's audio branch takes it."""
    mel = torch.log(_MEL(segments.float()) + 1e-6)  # (B, S, 128, 65)
    mel = pad_or_crop(mel, MEL_FRAMES)  # av-benchmark pad_or_truncate
    return ((mel - MEL_MEAN) / (2 * MEL_STD)).transpose(-1, -2)


def window_offsets(model: Synchformer, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Offsets (B, 2) in seconds of the first and the last `segments` segments (argmax on `OFFSET_GRID`)."""
    size = model.head_config.segments
    if visual.shape[1] < size or audio.shape[1] < size:
        raise UsageError(
            f"need {size} segments per window, got {visual.shape[1]} visual, {audio.shape[1]} audio"
        )
    b = visual.shape[0]
    windows = model.offset_logits(  # first and last windows of every item as one batch (2 B)
        torch.cat([visual[:, :size], visual[:, -size:]]), torch.cat([audio[:, :size], audio[:, -size:]])
    )
    logits = torch.stack([windows[:b], windows[b:]], dim=1)
    return OFFSET_GRID[logits.argmax(dim=-1).cpu()]


@dataclass
class DeSyncItem(ItemResult):
    """Per item: predicted offsets (s) of the first and last 4.8 s windows, DeSync = mean |offset| (s)."""

    offsets_s: tuple[float, float] | None = None
    desync_s: float | None = None
    source_fps: float | None = None


class DeSyncScorer(AVScorer[DeSyncItem]):
    """Scores (video, audio) pairs with one Synchformer; the audio defaults to the video's own track."""

    media, item_type, recipe = MEDIA, DeSyncItem, RECIPE

    def __init__(
        self,
        model: Synchformer,
        *,
        random_weights: bool,
        duration: float = DEFAULT_DURATION,
        device: str | torch.device = "cpu",
        batch_size: int = BATCH_SEGMENTS,
    ):
        self.model = model.eval().to(device)
        self.video = SynchformerEncoder(
            model.vfeat_extractor, random_weights=random_weights, device=device, batch_segments=batch_size
        )
        self.sequence = SequenceConfig(duration_s=duration, sample_rate=SAMPLE_RATE, mel_hop=160)
        if self.sequence.sync_segments < model.head_config.segments:
            raise UsageError(f"DeSync needs at least 4.8 s of video and audio, got duration {duration} s")
        self.random_weights = random_weights
        self.duration = duration
        self.device = torch.device(device)

    @classmethod
    def from_registry(cls, *, device: str | torch.device = "cpu", **options: Any) -> DeSyncScorer:
        """``synchformer_state_dict.pth`` from the weights registry (OfflineError when offline, not cached)."""
        with torch.device("meta"):
            model = Synchformer()
        weights.load_strict(
            model, weights.load_entry_state_dict(SYNCHFORMER_WEIGHTS), where=SYNCHFORMER_WEIGHTS, assign=True
        )
        return cls(model, random_weights=False, device=device, **options)

    def config(self) -> dict[str, Any]:
        return self.describe(
            duration_s=self.duration,
            windows="first and last 14 segments (4.8 s)",
            offset_classes_s=[round(float(v), 1) for v in OFFSET_GRID],
        )

    def features(self, frames: torch.Tensor, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 frames (T, 3, H, W) at 25 fps, shorter side 224, and 16 kHz mono (samples,) ->
        visual (1, S, 8, D) and audio (1, S, 6, D) features over the first `duration` seconds."""
        visual = self.video.encode_sync(frames[None].float() / 255.0, VIDEO_FPS, self.sequence)
        visual = visual.view(1, self.sequence.sync_segments, self.sequence.sync_tokens_per_segment, -1)
        samples = round(self.duration * SAMPLE_RATE)
        spectrogram = log_mel_segments(audio_segments(waveform[None, :samples]))
        with torch.inference_mode():
            audio = self.model.audio_features(spectrogram.to(self.device))
        return visual.to(self.device), audio

    def score_pair(self, item: DeSyncItem, pair: Pair) -> None:
        frames, waveform = pair.frames, pair.waveform
        item.source_fps = pair.video.source_fps
        needed_frames, needed_samples = int(self.duration * VIDEO_FPS), round(self.duration * SAMPLE_RATE)
        if frames.shape[0] < needed_frames or waveform.shape[1] < needed_samples:
            item.error = (
                f"shorter than the {self.duration:g} s DeSync needs: {frames.shape[0]} frames at 25 fps "
                f"(need {needed_frames}), {waveform.shape[1]} audio samples at 16 kHz (need {needed_samples})"
            )
            item.error_side = "video" if frames.shape[0] < needed_frames else "generated"
            return
        visual, audio_features = self.features(frames, waveform[0])
        with torch.inference_mode():
            offsets = window_offsets(self.model, visual, audio_features)[0]
        item.offsets_s = (float(offsets[0]), float(offsets[1]))
        item.desync_s = float(offsets.abs().mean())

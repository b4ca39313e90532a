"""IB-score: cosine similarity of ImageBind (huge) video and audio embeddings, per item (av-benchmark recipe).

Recipe (hkchengrex/av-benchmark ``VideoDataset`` / ``extract_video.py`` for the video,
``ImageBindAudioDataset`` for the audio, ``evaluate.py`` for the score):

* Video: 0.5 fps (FFmpeg ``fps`` filter), the first int(0.5 x duration) frames (4 for 8 s), shorter side
  224 (bicubic, antialiased, uint8), / 255, normalised with CLIP's mean (0.48145466, 0.4578275,
  0.40821073) and std (0.26862954, 0.26130258, 0.27577711); three 224 x 224 crops along the longer side
  (start, centre rounded up, end); clips of frames (i, i + 1) for i < frames - 1: 3 crops x 3 clips = 9
  for 8 s.
* Audio: 16 kHz (``torchaudio.functional.resample``), channel 0 (Kaldi fbank reads the first channel);
  three 2 s clips with starts k x (duration - 2) / 2 (pytorchvideo ``ConstantClipsPerVideoSampler``, exact
  fractions, samples int(start x 16000) .. int(end x 16000)); per clip: mean removed (in place, so clips
  that overlap, under 6 s, see the earlier clips' removal as in the reference), Kaldi fbank (htk
  compat, Hanning, 128 mel, 25 ms / 10 ms, no dither, no energy), padded with zeros or cut to 204 frames,
  (x + 4.268) / 9.138.
* Score: ``torch.cosine_similarity`` of the two embeddings (each the mean over its clips). av-benchmark
  prints the mean cosine as is (scale x1); papers (MMAudio: 33.22) print it x100. Items here carry the raw
  cosine; the set value is stated with its scale (``IB_SCALE``).

Batching (on the scorer's device): an item's clips move to the device once and run through each tower
`batch_size` at a time (default 9: all video clips of 8 s, the 3 audio clips, in one call each); the
batch size does not change the numbers (to float32 rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
import torchaudio

from agomni import weights
from agomni.io.resample import TORCHAUDIO_SINC_FUNCTIONAL
from agomni.metrics.av.imagebind import IMAGEBIND_HUGE, ImageBindTowers, tower_state
from agomni.metrics.av.media import AVScorer, ItemResult, MediaRecipe, Pair
from agomni.metrics.embedders.common import pad_or_crop

IMAGEBIND_WEIGHTS = "imagebind-huge"
VIDEO_FPS = 0.5
IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SAMPLE_RATE = 16000
CLIP_SECONDS = 2
CLIPS = 3
MEL_BINS = 128
MEL_FRAMES = 204
MEL_MEAN = -4.268
MEL_STD = 9.138
IB_SCALE = 100.0
RECIPE = "av-benchmark"
DEFAULT_DURATION = 8.0
BATCH_CLIPS = 9  # clips per tower call: all 9 video clips (3 crops x 3 frame pairs) of 8 s in one
MEDIA = MediaRecipe(
    fps=VIDEO_FPS,
    sample_rate=SAMPLE_RATE,
    size=IMAGE_SIZE,
    downmix="first",
    resampler=TORCHAUDIO_SINC_FUNCTIONAL,
)


def clip_times(
    duration_s: float, clip_s: int = CLIP_SECONDS, clips: int = CLIPS
) -> list[tuple[Fraction, Fraction]]:
    """(start, end) seconds of the audio clips (pytorchvideo ConstantClipsPerVideoSampler, as ImageBind)."""
    latest = Fraction(max(duration_s - clip_s, 0))
    step = latest / max(clips - 1, 1)
    out = []
    for index in range(clips):
        out.append((step * index, step * index + clip_s))
        if step * (index + 1) > latest:
            break
    return out


def audio_clips(waveform: torch.Tensor) -> torch.Tensor:
    """16 kHz (1, samples) -> (clips, 1, 128, 204) normalised Kaldi fbanks (module docstring)."""
    mels = []
    signal = waveform.clone()
    for start, end in clip_times(waveform.shape[-1] / SAMPLE_RATE):
        clip = signal[:, int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        clip -= clip.mean()  # in place on a view, as the reference: overlapping clips see earlier removals
        fbank = torchaudio.compliance.kaldi.fbank(
            clip,
            htk_compat=True,
            sample_frequency=SAMPLE_RATE,
            use_energy=False,
            window_type="hanning",
            num_mel_bins=MEL_BINS,
            dither=0.0,
            frame_length=25,
            frame_shift=10,
        ).T
        mels.append(((pad_or_crop(fbank, MEL_FRAMES) - MEL_MEAN) / MEL_STD)[None])
    return torch.stack(mels)


def crop_offsets(height: int, width: int, size: int = IMAGE_SIZE) -> list[tuple[int, int]]:
    """(top, left) of the three crops (av-benchmark ``uniform_crop``: start, centre rounded up, end of the
    longer side; a square frame gives three equal crops)."""
    top, left = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if height > width:
        return [(0, left), (top, left), (height - size, left)]
    return [(top, 0), (top, left), (top, width - size)]


def video_clips(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (T, 3, H, W), shorter side 224 -> (3 (T - 1), 3, 2, 224, 224): crops x consecutive frame pairs."""
    mean = torch.tensor(CLIP_MEAN)[:, None, None]
    std = torch.tensor(CLIP_STD)[:, None, None]
    x = (frames.float() / 255.0 - mean) / std
    crops = torch.stack(
        [
            x[..., top : top + IMAGE_SIZE, left : left + IMAGE_SIZE]
            for top, left in crop_offsets(*x.shape[-2:])
        ]
    )
    pairs = [crops[:, i : i + 2] for i in range(crops.shape[1] - 1)]  # each (3, 2, C, H, W)
    return torch.cat(pairs).transpose(1, 2)  # (3 (T - 1), C, 2, H, W)


@dataclass
class IBItem(ItemResult):
    """Per item: cosine of the ImageBind video and audio embeddings (scale x1, in [-1, 1])."""

    cosine: float | None = None
    video_clips: int = 0
    audio_clips: int = 0


class IBScorer(AVScorer[IBItem]):
    """Scores (video, audio) pairs; the audio defaults to the video's own track."""

    media, item_type, recipe = MEDIA, IBItem, RECIPE

    def __init__(
        self,
        towers: ImageBindTowers,
        *,
        random_weights: bool,
        duration: float = DEFAULT_DURATION,
        device: str | torch.device = "cpu",
        batch_size: int = BATCH_CLIPS,
    ):
        self.towers = towers.eval().to(device)
        self.batch_size = batch_size
        self.random_weights = random_weights
        self.duration = duration
        self.device = torch.device(device)

    @classmethod
    def from_registry(cls, *, device: str | torch.device = "cpu", **options: Any) -> IBScorer:
        """``imagebind_huge.pth`` (vision and audio towers) from the weights registry."""
        with torch.device("meta"):
            towers = ImageBindTowers(IMAGEBIND_HUGE)
        state = tower_state(weights.load_entry_state_dict(IMAGEBIND_WEIGHTS))
        weights.load_strict(towers, state, where=IMAGEBIND_WEIGHTS, assign=True)
        return cls(towers, random_weights=False, device=device, **options)

    def config(self) -> dict[str, Any]:
        return self.describe(duration_s=self.duration, item_scale="cosine x1")

    @torch.inference_mode()
    def embed(self, frames: torch.Tensor, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1024,) video and audio embeddings of uint8 frames (shorter side 224) and 16 kHz (1, samples)."""
        vision = self.towers.embed_vision(video_clips(frames)[None].to(self.device), self.batch_size)
        audio = self.towers.embed_audio(audio_clips(waveform)[None].to(self.device), self.batch_size)
        return vision[0].float().cpu(), audio[0].float().cpu()

    def score_pair(self, item: IBItem, pair: Pair) -> None:
        frames, waveform = pair.frames, pair.waveform
        needed = int(VIDEO_FPS * self.duration)
        if frames.shape[0] < needed:
            item.error = (
                f"{frames.shape[0]} frames at 0.5 fps; IB-score over {self.duration:g} s needs {needed}"
            )
            item.error_side = "video"
            return
        if waveform.shape[1] < 400:
            item.error = f"{waveform.shape[1]} audio samples at 16 kHz: shorter than one 25 ms fbank frame"
            item.error_side = "generated"
            return
        frames = frames[:needed]
        vision, sound = self.embed(frames, waveform)
        item.cosine = float(torch.cosine_similarity(vision, sound, dim=-1))
        item.video_clips = 3 * (needed - 1)
        item.audio_clips = len(clip_times(waveform.shape[1] / SAMPLE_RATE))

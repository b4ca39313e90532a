"""Model sizes and sequence lengths of the reference MMDiT, in one place.

Every sequence length the network uses (audio latents, CLIP tokens, Synchformer tokens) is derived
here from a duration and the stream rates; no other module holds a length literal. The S/M/L
dimensions follow MMAudio (hkchengrex/MMAudio, `mmaudio/model/networks.py` and
`sequence_config.py`); the lyrics/transcription (LT) stream and the tiny sizes are agomni's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from ..errors import UsageError
from .text import vocab_size


@dataclass(frozen=True)
class SequenceConfig:
    """Stream rates and the sequence lengths they imply for one clip duration.

    Recipe (MMAudio `SequenceConfig`): latent frames = ceil(duration * sample_rate / hop / downsample);
    CLIP tokens = floor(duration * clip_fps); Synchformer tokens = segments * tokens_per_segment with
    segments = (floor(duration * sync_input_fps) - frames_per_segment) // segment_step + 1.
    """

    duration_s: float
    sample_rate: int  # audio sample rate, Hz
    mel_hop: int  # mel-spectrogram hop, samples
    latent_downsample: int = 2  # mel frames per latent frame
    clip_fps: float = 8.0  # CLIP visual features per second
    sync_input_fps: float = 25.0  # video frames per second fed to Synchformer
    sync_frames_per_segment: int = 16  # video frames per Synchformer segment
    sync_segment_step: int = 8  # video frames between segment starts
    sync_tokens_per_segment: int = 8  # Synchformer output tokens per segment

    MAX_DURATION_S: ClassVar[float] = 600.0  # longest clip the network is re-timed to, seconds

    def __post_init__(self) -> None:
        if not (0 < self.duration_s <= self.MAX_DURATION_S):
            raise UsageError(
                f"duration must be a number of seconds in (0, {self.MAX_DURATION_S:g}], got {self.duration_s!r}"
            )
        if self.sync_segments < 1:
            minimum = self.sync_frames_per_segment / self.sync_input_fps
            raise UsageError(
                f"duration {self.duration_s} s is shorter than one Synchformer segment ({minimum:.2f} s)"
            )
        if self.clip_len < 1:
            raise UsageError(f"duration {self.duration_s} s holds no CLIP frame at {self.clip_fps} fps")

    @property
    def latent_fps(self) -> float:
        """Audio-latent frames per second (31.25 at 16 kHz/hop 256, 43.07 at 44.1 kHz/hop 512)."""
        return self.sample_rate / self.mel_hop / self.latent_downsample

    @property
    def latent_len(self) -> int:
        """Audio-latent frames for the duration (250 at 16 kHz, 345 at 44.1 kHz for 8 s)."""
        return math.ceil(self.duration_s * self.sample_rate / self.mel_hop / self.latent_downsample)

    @property
    def clip_len(self) -> int:
        """CLIP tokens for the duration (64 for 8 s at 8 fps)."""
        return int(self.duration_s * self.clip_fps)

    @property
    def sync_segments(self) -> int:
        """Synchformer segments (24 for 8 s)."""
        frames = int(self.duration_s * self.sync_input_fps)
        return (frames - self.sync_frames_per_segment) // self.sync_segment_step + 1

    @property
    def sync_len(self) -> int:
        """Synchformer tokens (192 for 8 s; 24 fps of features)."""
        return self.sync_segments * self.sync_tokens_per_segment

    @property
    def num_audio_samples(self) -> int:
        """Waveform samples that decode from `latent_len` latent frames."""
        return self.latent_len * self.mel_hop * self.latent_downsample

    def with_duration(self, duration_s: float) -> SequenceConfig:
        """The same rates for another duration (seconds)."""
        return dataclasses.replace(self, duration_s=float(duration_s))


def sequence_16k(duration_s: float = 8.0) -> SequenceConfig:
    """16 kHz audio, mel hop 256, latent 31.25 fps (MMAudio's 16k VAE)."""
    return SequenceConfig(duration_s=duration_s, sample_rate=16_000, mel_hop=256)


def sequence_44k(duration_s: float = 8.0) -> SequenceConfig:
    """44.1 kHz audio, mel hop 512, latent 43.07 fps (MMAudio's 44k VAE)."""
    return SequenceConfig(duration_s=duration_s, sample_rate=44_100, mel_hop=512)


@dataclass(frozen=True)
class ConditionDropout:
    """Training-time probability of dropping each modality, independently per sample (MMAudio: 0.1)."""

    video: float = 0.1
    text: float = 0.1
    lt: float = 0.1

    def __post_init__(self) -> None:
        for name in ("video", "text", "lt"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise UsageError(f"dropout probability for {name} must be in [0, 1], got {p}")


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions of one reference-model size. Feature dims are those of the frozen encoders.

    latent_dim: VAE latent channels (20 at 16 kHz, 40 at 44.1 kHz); clip_dim: CLIP visual feature
    width (1024); sync_dim: Synchformer feature width (768); text_dim: text-encoder feature width
    (1024); text_len: default text tokens (77); lt_tokenizer: the LT token mode of agomni.model.text
    ("grapheme" = UTF-8 bytes, or "phoneme"), which fixes the LT embedding table size;
    lt_dim/lt_blocks: LT encoder width and ConvNeXt-V2 depth (F5-TTS: 512 and 4);
    mlp_multiple_of: hidden widths of (Conv)MLPs round up to this.
    """

    name: str
    sequence: SequenceConfig
    latent_dim: int
    hidden_dim: int
    num_heads: int
    joint_blocks: int
    single_blocks: int
    clip_dim: int = 1024
    sync_dim: int = 768
    text_dim: int = 1024
    text_len: int = 77
    lt_tokenizer: str = "grapheme"
    lt_dim: int = 512
    lt_blocks: int = 4
    lt_conv_mult: int = 2
    mlp_ratio: float = 4.0
    mlp_multiple_of: int = 256
    rope_theta: float = 10_000.0
    dropout: ConditionDropout = ConditionDropout()

    def __post_init__(self) -> None:
        if self.hidden_dim % self.num_heads:
            raise UsageError(f"{self.name}: hidden_dim {self.hidden_dim} not divisible by {self.num_heads}")
        if self.head_dim % 2:
            raise UsageError(f"{self.name}: head dim {self.head_dim} must be even for RoPE")
        vocab_size(self.lt_tokenizer)  # UsageError for an unknown tokenizer mode
        if self.joint_blocks < 1 or self.single_blocks < 0:
            raise UsageError(f"{self.name}: needs >= 1 joint block and >= 0 single blocks")

    @property
    def lt_vocab_size(self) -> int:
        """LT embedding table size, filler id 0 included (agomni.model.text.vocab_size)."""
        return vocab_size(self.lt_tokenizer)

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    def with_duration(self, duration_s: float) -> ModelConfig:
        """The same network for another clip duration (seconds); weights are unaffected."""
        return dataclasses.replace(self, sequence=self.sequence.with_duration(duration_s))


def _mmaudio_size(name: str, sequence: SequenceConfig, latent_dim: int, heads: int, joint: int, single: int):
    return ModelConfig(
        name=name,
        sequence=sequence,
        latent_dim=latent_dim,
        hidden_dim=64 * heads,
        num_heads=heads,
        joint_blocks=joint,
        single_blocks=single,
    )


def s_16k() -> ModelConfig:
    """MMAudio small_16k dimensions (7 x 64 = 448 hidden, 4 joint + 8 single blocks) + LT stream."""
    return _mmaudio_size("S-16k", sequence_16k(), latent_dim=20, heads=7, joint=4, single=8)


def s_44k() -> ModelConfig:
    """MMAudio small_44k dimensions (448 hidden, 4 + 8 blocks, 40 latent channels) + LT stream."""
    return _mmaudio_size("S-44k", sequence_44k(), latent_dim=40, heads=7, joint=4, single=8)


def m_44k() -> ModelConfig:
    """MMAudio medium_44k dimensions (14 x 64 = 896 hidden, 4 + 8 blocks) + LT stream."""
    return _mmaudio_size("M-44k", sequence_44k(), latent_dim=40, heads=14, joint=4, single=8)


def l_44k() -> ModelConfig:
    """MMAudio large_44k dimensions (896 hidden, 7 joint + 14 single blocks) + LT stream."""
    return _mmaudio_size("L-44k", sequence_44k(), latent_dim=40, heads=14, joint=7, single=14)


def _tiny(name: str, sequence: SequenceConfig, latent_dim: int) -> ModelConfig:
    # Two joint blocks, so that both the full joint block and the last (keys/values-only) one run.
    return ModelConfig(
        name=name,
        sequence=sequence,
        latent_dim=latent_dim,
        hidden_dim=64,
        num_heads=2,
        joint_blocks=2,
        single_blocks=1,
        clip_dim=32,
        sync_dim=24,
        text_dim=32,
        text_len=8,
        lt_dim=32,
        lt_blocks=1,
        mlp_multiple_of=16,
    )


def tiny_16k() -> ModelConfig:
    """CPU-test size at the 16 kHz latent rate: hidden 64, 2 heads, 2 joint + 1 single block."""
    return _tiny("tiny-16k", sequence_16k(), latent_dim=20)


def tiny_44k() -> ModelConfig:
    """CPU-test size at the 44.1 kHz latent rate: hidden 64, 2 heads, 2 joint + 1 single block."""
    return _tiny("tiny-44k", sequence_44k(), latent_dim=40)


SIZES = {
    "tiny-16k": tiny_16k,
    "tiny-44k": tiny_44k,
    "S-16k": s_16k,
    "S-44k": s_44k,
    "M-44k": m_44k,
    "L-44k": l_44k,
}

# Short names (as `agomni profile --size` takes them) -> full size names.
SIZE_ALIASES = {"tiny": "tiny-16k", "S": "S-16k", "M": "M-44k", "L": "L-44k"}


def model_config(size: str, duration_s: float | None = None) -> ModelConfig:
    """The config of a named size (see `SIZES`, or a short name of `SIZE_ALIASES`), optionally re-timed."""
    name = SIZE_ALIASES.get(size, size)
    if name not in SIZES:
        valid = ", ".join([*SIZES, *SIZE_ALIASES])
        raise UsageError(f"unknown model size {size!r}; valid sizes: {valid}")
    config = SIZES[name]()
    return config if duration_s is None else config.with_duration(duration_s)

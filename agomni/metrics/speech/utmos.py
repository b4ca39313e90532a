"""UTMOS22 strong learner: predicted naturalness MOS of speech (the UTMOS column of F5-TTS and most
zero-shot TTS tables), in agomni's own code, equal to the ``utmos-pytorch`` package's model (0.1.0) on the
same weights.

Recipe (F5-TTS's ``eval_utmos.py`` through SpeechMOS's ``utmos22_strong``; the network of the authors'
UTMOS22 strong learner without its phoneme encoder, as in their demo):

- Audio: the file decoded at its own rate, channels averaged (``librosa.load(sr=None, mono=True)``), then
  resampled to 16 kHz by ``torchaudio.functional.resample`` with its defaults (Hann-windowed sinc, 6 zero
  crossings, roll-off 0.99), float32. One clip at a time (batch 1: no padding).
- SSL front end: wav2vec 2.0 Base in fairseq's layout (``wav2vec_small``): seven 1-D convolutions (512
  channels; kernels 10, 3, 3, 3, 3, 2, 2; strides 5, 2, 2, 2, 2, 2, 2; no bias; group norm with one
  group per channel after the first; exact GELU), so one frame per 20 ms (receptive field 400 samples);
  layer norm, a linear layer to 768, a grouped convolutional position embedding (kernel 128, 16 groups,
  weight-normalised over the kernel axis, last output frame dropped, GELU) added, layer norm, then twelve
  post-norm transformer layers (12 heads, feed-forward 3072, GELU). The last layer's output is used.
- Learner head: each frame's 768 features joined with the data-domain embedding (row 0 of 3, 128 wide)
  and the listener embedding (row 288 of 3000, 128 wide); a one-layer bidirectional LSTM (512 per
  direction); a linear layer to 2048, ReLU, a linear layer to 1: a score per frame. The utterance score is
  the mean over frames times 2 plus 3.

Scale about 1-5, higher is better (predicted naturalness MOS). Per item: empty or non-finite audio and
clips shorter than one frame (400 samples at 16 kHz, 25 ms) are errors naming the item; so are clips longer
than `MAX_SECONDS` (agomni's guard on memory: the reference takes any length; cut such clips); non-speech
audio is scored and flagged.

Weights: the authors' checkpoint layout (``feature_extractors.0.ssl_model.*``,
``feature_extractors.1.embedding.weight``, ``output_layers.0.judge_embedding.weight``,
``output_layers.0.decoder_rnn.*``, ``output_layers.1.net.{0,3}.*``), as the Lightning checkpoint's
``state_dict`` holds it (such a file loads only if its other entries need no pickled classes) and as
utmos-pytorch's ``utmos_state_dict.pt`` holds it; SpeechMOS's release file
(``utmos22_strong_step7459_v1.pt``, the one F5-TTS loads: the same tensors under shorter names, with only
the domain and listener rows the recipe uses) is converted to it on load (`from_speechmos_layout`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import MetricInputError, WeightsError
from agomni.io import load_audio
from agomni.io.resample import TORCHAUDIO_SINC_FUNCTIONAL
from agomni.metrics.speech.items import RANDOM_BACKEND, SetScore, mono_float, non_speech_flags, score_clips
from agomni.metrics.speech.wavlm import FeatureExtractor, WavLMConfig
from agomni.weights import load_checkpoint, load_strict

SAMPLE_RATE = 16000
MIN_SAMPLES = 400  # the convolutions' receptive field: one output frame
MAX_SECONDS = 120.0
DOMAIN_ID = 0
JUDGE_ID = 288
RECIPE = (
    "UTMOS22 strong (SpeechMOS utmos22_strong, F5-TTS eval_utmos): channel mean, torchaudio sinc resample "
    "to 16 kHz, wav2vec 2.0 Base + domain 0 / listener 288 embeddings + BLSTM + projection, frame mean x2+3"
)
#: Name prefixes of SpeechMOS's layout -> the authors' layout (`from_speechmos_layout`).
SPEECHMOS_PREFIXES = {
    "wav2vec2.": "feature_extractors.0.ssl_model.",
    "blstm.": "output_layers.0.decoder_rnn.",
    "projection.0.": "output_layers.1.net.0.",
    "projection.2.": "output_layers.1.net.3.",
}
DOMAIN_TABLE = "feature_extractors.1.embedding.weight"
JUDGE_TABLE = "output_layers.0.judge_embedding.weight"


class _WeightNormConv(nn.Module):
    """A grouped 1-D convolution whose kernel is ``weight_v`` rescaled to norm ``weight_g`` per kernel
    position (weight normalisation over axis 2, with fairseq's parameter names)."""

    def __init__(self, width: int, kernel: int, groups: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(width, width // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(width))
        nn.init.normal_(self.weight_v, std=(4.0 / (kernel * width)) ** 0.5)
        self.groups, self.padding = groups, kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, C, T + 1]
        norm = self.weight_v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        weight = self.weight_v * (self.weight_g / norm)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        b, t, c = x.shape

        def split(proj: nn.Linear) -> torch.Tensor:
            return proj(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj), split(self.k_proj), split(self.v_proj))
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class _EncoderLayer(nn.Module):
    """Post-norm transformer layer (fairseq ``layer_norm_first=False``)."""

    def __init__(self, width: int = 768, heads: int = 12, hidden: int = 3072):
        super().__init__()
        self.self_attn = _Attention(width, heads)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)
        self.final_layer_norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class _Encoder(nn.Module):
    def __init__(self, width: int = 768, layers: int = 12):
        super().__init__()
        self.pos_conv = nn.Sequential(_WeightNormConv(width, 128, 16))
        self.layer_norm = nn.LayerNorm(width)
        self.layers = nn.ModuleList(_EncoderLayer(width) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        position = F.gelu(self.pos_conv(x.transpose(1, 2))[:, :, :-1])
        x = self.layer_norm(x + position.transpose(1, 2))
        for layer in self.layers:
            x = layer(x)
        return x


class Wav2Vec2Base(nn.Module):
    """wav2vec 2.0 Base with fairseq's parameter names, inference only (no masking, no quantiser);
    ``mask_emb`` is kept because checkpoints hold it. Its feature extractor is WavLM's default one (the
    same seven convolutions, group norm after the first)."""

    def __init__(self):
        super().__init__()
        self.feature_extractor = FeatureExtractor(WavLMConfig())
        self.layer_norm = nn.LayerNorm(512)
        self.post_extract_proj = nn.Linear(512, 768)
        self.encoder = _Encoder()
        self.mask_emb = nn.Parameter(torch.zeros(768))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, frames, 768]
        features = self.layer_norm(self.feature_extractor(wav).transpose(1, 2))
        return self.encoder(self.post_extract_proj(features))


class _SSL(nn.Module):
    def __init__(self):
        super().__init__()
        self.ssl_model = Wav2Vec2Base()


class _DomainEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(3, 128)


class _Conditioner(nn.Module):
    """Listener embedding and the BLSTM over [SSL features, domain, listener] per frame."""

    def __init__(self):
        super().__init__()
        self.judge_embedding = nn.Embedding(3000, 128)
        self.decoder_rnn = nn.LSTM(768 + 128 + 128, 512, batch_first=True, bidirectional=True)


class _Projection(nn.Module):
    def __init__(self):
        super().__init__()
        # index 2: the reference's dropout slot (checkpoint names net.0 and net.3)
        self.net = nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Identity(), nn.Linear(2048, 1))


class UTMOSNetwork(nn.Module):
    """The UTMOS22 strong learner (no phoneme encoder) with the authors' parameter names."""

    def __init__(self):
        super().__init__()
        self.feature_extractors = nn.ModuleList([_SSL(), _DomainEmbedding()])
        self.output_layers = nn.ModuleList([_Conditioner(), _Projection()])

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Utterance scores [B] of 16 kHz waveforms [B, T]."""
        ssl = self.feature_extractors[0].ssl_model(wav)
        b, t, _ = ssl.shape
        domain = self.feature_extractors[1].embedding.weight[DOMAIN_ID]
        judge = self.output_layers[0].judge_embedding.weight[JUDGE_ID]
        joined = torch.cat([ssl, domain.expand(b, t, -1), judge.expand(b, t, -1)], dim=2)
        frames = self.output_layers[1].net(self.output_layers[0].decoder_rnn(joined)[0])
        return frames.mean(dim=1).squeeze(1) * 2 + 3


def from_speechmos_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SpeechMOS's names (``wav2vec2.*``, ``domain_emb`` [1, 128], ``judge_emb`` [1, 128], ``blstm.*``,
    ``projection.{0,2}.*``) -> the authors' layout; the unused domain and listener rows are zero."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        prefix = next((p for p in SPEECHMOS_PREFIXES if name.startswith(p)), None)
        if prefix is not None:
            out[SPEECHMOS_PREFIXES[prefix] + name[len(prefix) :]] = tensor
        elif name not in ("domain_emb", "judge_emb"):
            out[name] = tensor  # an unknown name: load_strict reports it
    for name, table, rows, row in (
        ("domain_emb", DOMAIN_TABLE, 3, DOMAIN_ID),
        ("judge_emb", JUDGE_TABLE, 3000, JUDGE_ID),
    ):
        if name in state:
            full = torch.zeros(rows, state[name].shape[-1], dtype=state[name].dtype)
            full[row] = state[name].reshape(-1)
            out[table] = full
    return out


def random_network(seed: int) -> UTMOSNetwork:
    """A `UTMOSNetwork` with seeded random weights for tests and latency. PyTorch's default initialisation
    gives nearly the same score for every input, so matrices are drawn with a standard deviation of
    2 / sqrt(fan-in), layer-norm and group-norm gains around 1, and the weight-norm gains from 0.5 to 2."""
    network = UTMOSNetwork()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith("weight_g"):
                tensor.uniform_(0.5, 2.0, generator=generator)
            elif tensor.dim() >= 2 and "embedding" not in name:
                tensor.normal_(0.0, 2.0 / tensor[0].numel() ** 0.5, generator=generator)
            elif "norm" in name and name.endswith("weight"):
                tensor.normal_(1.0, 0.3, generator=generator)
            else:
                tensor.normal_(0.0, 0.3, generator=generator)
    return network


class UTMOS:
    """Scores clips with a `UTMOSNetwork`, one clip at a time."""

    sample_rate = SAMPLE_RATE

    def __init__(self, network: UTMOSNetwork, *, random_weights: bool, device: str = "cpu"):
        self.network = network.eval().to(device)
        self.device = device
        self.random_weights = random_weights
        self.backend = "agomni UTMOS22 strong" + (RANDOM_BACKEND if random_weights else "")

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu") -> UTMOS:
        """A state dict in the authors' layout (bare, or under ``state_dict`` as in their Lightning file)
        or in SpeechMOS's, loaded without pickled code."""
        checkpoint = load_checkpoint(path)
        if not isinstance(checkpoint, Mapping):
            raise WeightsError(f"{path}: not a UTMOS state dict (a {type(checkpoint).__name__})")
        state = checkpoint.get("state_dict", checkpoint)
        if "judge_emb" in state:
            state = from_speechmos_layout(state)
        network = UTMOSNetwork()
        load_strict(network, state, where=str(path))
        return cls(network, random_weights=False, device=device)

    @torch.no_grad()
    def score(self, audio: np.ndarray) -> float:
        """The predicted MOS of one mono 16 kHz clip."""
        if audio.size < MIN_SAMPLES:
            raise MetricInputError(
                f"{audio.size} samples at 16 kHz: UTMOS needs at least {MIN_SAMPLES} (25 ms, one frame)"
            )
        if audio.size > MAX_SECONDS * SAMPLE_RATE:
            raise MetricInputError(
                f"{audio.size / SAMPLE_RATE:.1f} s: longer than agomni's UTMOS limit of {MAX_SECONDS:.0f} s "
                "(attention memory grows with the square of the length); cut the clip"
            )
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=self.device)
        return float(self.network(wav.unsqueeze(0))[0])


def load_16k(path: str | os.PathLike[str]) -> np.ndarray:
    """One file as the recipe reads it: decoded at its own rate, channels averaged, then
    ``torchaudio.functional.resample`` to 16 kHz with its defaults (float32). `MediaError` names the file."""
    samples, _ = load_audio(
        path,
        sample_rate=SAMPLE_RATE,
        downmix="mean",
        resampler=TORCHAUDIO_SINC_FUNCTIONAL,
        allow_silence=True,
    )
    return samples[0].numpy()


def utmos(
    clips: Sequence[np.ndarray],
    model: UTMOS,
    *,
    ids: Sequence[str] | None = None,
    progress: bool = False,
) -> SetScore:
    """UTMOS of each clip (mono 16 kHz float arrays; `load_16k` reads a file as the recipe does)."""

    def score(item_id: str, clip: np.ndarray) -> tuple[dict[str, float], tuple[str, ...]]:
        audio = mono_float(clip, f"item {item_id}")
        return {"UTMOS": model.score(audio)}, non_speech_flags(audio, SAMPLE_RATE)

    return score_clips(
        clips, ids, score, ("UTMOS",), "MOS (1-5)", RECIPE, model.backend, desc="UTMOS", progress=progress
    )["UTMOS"]

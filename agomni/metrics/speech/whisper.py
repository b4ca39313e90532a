"""Whisper (large-v3) in agomni's own code: log-mel front end, encoder-decoder network, greedy decoding.

The seed-tts-eval English WER recipe: Whisper-large-v3, language forced to English, task transcribe,
no timestamps, greedy decoding (temperature 0, no fallback). The network and parameter names follow
OpenAI's checkpoint layout (``large-v3.pt``: ``{"dims": {...}, "model_state_dict": {...}}``, registry
entry ``whisper-large-v3``), so the published file loads as is, without pickled code.

- Front end: mono 16 kHz audio padded with zeros (or refused when longer) to 30 s; STFT (400-point
  Hann window, hop 160, centred, reflect padding), power of the 3000 first frames, Slaney mel filter
  bank (librosa, 128 bands for v3), ``log10(max(mel, 1e-10))``, floored at (max - 8), ``(x + 4) / 4``.
- Network: conv front (k3, then k3 stride 2, GELU), sinusoidal positions, pre-LayerNorm transformer
  encoder; decoder with learned positions, causal self-attention, cross-attention, tied output
  embedding.
- Decoding: start tokens ``<|startoftranscript|><|en|><|transcribe|><|notimestamps|>``; at every step
  the non-speech symbols and the task/start tokens are suppressed, at the first step also blank and
  end-of-text; the argmax token is appended until end-of-text or 224 tokens. The tokenizer (tiktoken
  vocabulary) comes from the ``openai-whisper`` package, which ships it (no download).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import MetricInputError, UsageError, WeightsError
from agomni.metrics.speech.items import RANDOM_BACKEND, RANDOM_RECIPE
from agomni.weights import get_entry, load_checkpoint, load_strict, resolve, unwrap_state_dict

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
CHUNK_SAMPLES = 30 * SAMPLE_RATE
N_FRAMES = CHUNK_SAMPLES // HOP
MAX_NEW_TOKENS = 224
REGISTRY_NAME = "whisper-large-v3"


@dataclass(frozen=True)
class WhisperDims:
    """Model dimensions, as stored under ``"dims"`` in OpenAI's checkpoints."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


LARGE_V3 = WhisperDims(128, 1500, 1280, 20, 32, 51866, 448, 1280, 20, 32)


@cache
def _mel_filters(n_mels: int) -> torch.Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)).float()


def log_mel(audio: np.ndarray | torch.Tensor, n_mels: int = 128) -> torch.Tensor:
    """Whisper's log-mel of one mono 16 kHz clip of at most 30 s, as ``[n_mels, 3000]`` (see module doc)."""
    wav = torch.as_tensor(audio, dtype=torch.float32).flatten()
    if wav.numel() > CHUNK_SAMPLES:
        raise MetricInputError(
            f"audio is {wav.numel() / SAMPLE_RATE:.2f} s; Whisper scoring takes clips of at most 30 s in this version"
        )
    wav = F.pad(wav, (0, CHUNK_SAMPLES - wav.numel()))
    stft = torch.stft(wav, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = stft[:, :N_FRAMES].abs() ** 2
    log_spec = torch.clamp(_mel_filters(n_mels) @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Sinusoidal positions: sin then cos of ``t / 10000^(i / (channels/2 - 1))``."""
    increment = np.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    angle = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(
        self, x: torch.Tensor, source: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        source = x if source is None else source

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(*t.shape[:2], self.heads, -1).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(source)), split(self.value(source))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=causal and x.shape[1] > 1)
        return self.out(attended.transpose(1, 2).flatten(2))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, cross: bool):
        super().__init__()
        self.attn = Attention(width, heads)
        self.attn_ln = nn.LayerNorm(width)
        self.cross_attn = Attention(width, heads) if cross else None
        self.cross_attn_ln = nn.LayerNorm(width) if cross else None
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.mlp_ln = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), causal=self.cross_attn is not None)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.cross_attn_ln(x), audio)
        return x + self.mlp(self.mlp_ln(x))


class Encoder(nn.Module):
    def __init__(self, d: WhisperDims):
        super().__init__()
        self.conv1 = nn.Conv1d(d.n_mels, d.n_audio_state, 3, padding=1)
        self.conv2 = nn.Conv1d(d.n_audio_state, d.n_audio_state, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(d.n_audio_ctx, d.n_audio_state))
        self.blocks = nn.ModuleList(
            Block(d.n_audio_state, d.n_audio_head, False) for _ in range(d.n_audio_layer)
        )
        self.ln_post = nn.LayerNorm(d.n_audio_state)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positional_embedding
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


class Decoder(nn.Module):
    def __init__(self, d: WhisperDims):
        super().__init__()
        self.token_embedding = nn.Embedding(d.n_vocab, d.n_text_state)
        self.positional_embedding = nn.Parameter(torch.zeros(d.n_text_ctx, d.n_text_state))
        self.blocks = nn.ModuleList(Block(d.n_text_state, d.n_text_head, True) for _ in range(d.n_text_layer))
        self.ln = nn.LayerNorm(d.n_text_state)

    def forward(self, tokens: torch.Tensor, audio: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Logits ``[batch, tokens, vocab]`` (``[batch, 1, vocab]`` for the last position only)."""
        x = self.token_embedding(tokens) + self.positional_embedding[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, audio)
        x = self.ln(x[:, -1:] if last_only else x)
        return x @ self.token_embedding.weight.T


class WhisperNetwork(nn.Module):
    """Encoder + decoder with OpenAI's parameter names."""

    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.dims = dims
        self.encoder = Encoder(dims)
        self.decoder = Decoder(dims)

    def forward(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(tokens, self.encoder(mel))


def _tokenizer(dims: WhisperDims):
    try:
        from whisper.tokenizer import get_tokenizer
    except ImportError as err:
        raise UsageError(
            "Whisper's tokenizer comes from openai-whisper (pip install 'agomni[speech]')"
        ) from err
    return get_tokenizer(
        multilingual=dims.n_vocab >= 51865,
        num_languages=dims.n_vocab - 51765 - 1,
        language="en",
        task="transcribe",
    )


class WhisperASR:
    """Whisper greedy transcription, English forced (the seed-tts-eval EN recipe)."""

    name = "whisper-large-v3"
    recipe = "seed-tts-eval (Whisper-large-v3, English forced, greedy, no timestamps)"
    languages = ("en",)
    sample_rate = SAMPLE_RATE

    def __init__(self, network: WhisperNetwork, *, random_weights: bool, device: str = "cpu") -> None:
        self.network = network.eval().to(device)
        self.device = device
        self.random_weights = random_weights
        if random_weights:
            self.name += RANDOM_BACKEND
            self.recipe += RANDOM_RECIPE
        self.tokenizer = _tokenizer(network.dims)
        tk = self.tokenizer
        self.start = list(tk.sot_sequence_including_notimestamps)
        self.suppress = sorted(
            {*tk.non_speech_tokens, tk.translate, tk.transcribe, tk.sot, tk.sot_prev, tk.sot_lm, tk.no_speech}
        )
        self.suppress_first = [*tk.encode(" "), tk.eot]
        self.version = "agomni"
        self.max_new_tokens = MAX_NEW_TOKENS

    @classmethod
    def from_registry(cls, name: str = REGISTRY_NAME, device: str = "cpu") -> WhisperASR:
        """The published checkpoint from the agomni weights cache (verified), loaded without pickled code."""
        entry = get_entry(name)
        checkpoint = load_checkpoint(resolve(entry))
        if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("dims"), dict):
            raise WeightsError(f"{name}: the checkpoint has no 'dims' mapping (not an OpenAI Whisper file)")
        try:
            dims = WhisperDims(**checkpoint["dims"])
        except TypeError as err:
            raise WeightsError(f"{name}: unexpected Whisper dims {checkpoint['dims']}") from err
        network = WhisperNetwork(dims)
        state = unwrap_state_dict(checkpoint, key=entry.state_dict_key, where=name)
        load_strict(network, state, where=name)
        return cls(network, random_weights=False, device=device)

    @classmethod
    def random(cls, dims: WhisperDims = LARGE_V3, seed: int = 0, device: str = "cpu") -> WhisperASR:
        """Seeded random weights (tests and latency only; every output says so)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            network = WhisperNetwork(dims)
            for parameter in network.parameters():
                if parameter.dim() > 1:  # matrices and embeddings; LayerNorm and biases keep their defaults
                    nn.init.normal_(parameter, std=0.05)
        return cls(network, random_weights=True, device=device)

    @torch.no_grad()
    def decode_tokens(self, audio: np.ndarray) -> list[int]:
        """Greedy token ids (text tokens only, end-of-text excluded) of one clip."""
        mel = log_mel(audio, self.network.dims.n_mels)[None].to(self.device)
        encoded = self.network.encoder(mel)
        tokens = torch.tensor([self.start], device=self.device)
        for step in range(self.max_new_tokens):
            logits = self.network.decoder(tokens, encoded, last_only=True)[0, -1].float()
            logits[self.suppress] = -np.inf
            if step == 0:
                logits[self.suppress_first] = -np.inf
            next_token = int(logits.argmax())
            if next_token == self.tokenizer.eot:
                break
            tokens = torch.cat([tokens, torch.tensor([[next_token]], device=self.device)], dim=1)
        return tokens[0, len(self.start) :].tolist()

    def transcribe(self, audio: np.ndarray, language: str) -> str:
        if language not in self.languages:
            raise MetricInputError(f"{self.name} is run with English forced; {language!r} is not supported")
        return self.tokenizer.decode(self.decode_tokens(audio)).strip()

"""PaSST-S (``passt_s_swa_p16_128_ap476``) AudioSet tagger: 768-d clip embedding and 527 logits at 32 kHz.

Used for FD_PaSST, KL_PaSST and IS_PaSST of av-benchmark (hkchengrex/av-benchmark ``av_bench/extract.py``:
``hear21passt.base.get_basic_model(mode="all")``; its output row is ``[527 logits | 768 embedding]``).

Own implementation, not a wrapper: the network is a plain ViT (~90 lines here), and the upstream package
(hear21passt 0.0.26) prints from inside ``forward``, keeps global state, calls
``torch.stft(return_complex=False)`` (deprecated, announced to become an error) and pulls in timm. Equality
with the upstream classes is proven in tests/metrics/test_passt.py: the same (random) weights loaded into
both give the same embeddings and logits to 1e-4 relative, on resampled stereo files, each side with its
own preprocessing. Runtime needs only torch and torchaudio (no extra package).

Preprocessing (hear21passt ``AugmentMelSTFT`` in eval mode, with ``get_basic_model``'s settings):

1. length: the first 320000 samples (10 s) are kept, shorter clips are zero-padded at the end to exactly
   320000 (av-benchmark ``extract.py``). Note av-benchmark's data loader first cuts every file to its
   ``--audio_length`` seconds (no default; MMAudio passes 8), subtracts the waveform mean and resamples with
   ``torchaudio.transforms.Resample``: those steps belong to the loader (the ``av-benchmark`` input
   recipe of `agomni.io.prepare`, which `agomni eval` applies), not to this class;
2. pre-emphasis ``y[n] = x[n+1] - 0.97 x[n]`` (a valid convolution: 319999 samples);
3. ``torch.stft``: n_fft 1024, win 800 (symmetric Hann, ``periodic=False``, centred in the 1024 frame),
   hop 320, ``center=True`` with reflect padding -> power spectrum, 1000 frames;
4. mel: Kaldi triangular filters (``torchaudio.compliance.kaldi.get_mel_banks``, 128 bands, 0-15000 Hz,
   a zero column appended for the Nyquist bin) -> ``ln(mel + 1e-5)`` -> ``(x + 4.5) / 5``.

Network: patch embedding Conv2d(1, 768, 16x16, stride 10) -> 12 x 99 patches, separate frequency and time
positional embeddings, class + distillation tokens, 12 pre-norm transformer blocks (768-d, 12 heads, GELU
MLP 3072, LayerNorm eps 1e-6), final LayerNorm; embedding = mean of the two token outputs; logits =
``head`` (LayerNorm eps 1e-5 + Linear 768->527) of the embedding. ``head_dist`` is part of the official
checkpoint and loaded strictly, but (as upstream) unused.

KL segment rules (``segment_rule``):

- ``"first-10s"`` (av-benchmark FD_PaSST / KL_PaSST / IS_PaSST): one pass over the padded/cropped 10 s.
- ``"windows-10s-hop-5s"`` (stable-audio-metrics ``passt_kld.return_probabilities``, ``collect='mean'``):
  windows of 10 s starting every 5 s while the start is below ``max(5 s, len - 5 s)``; a window shorter
  than 10 s is zero-padded to 10 s when it is longer than 1.5 s (upstream feeds a window of 1.5 s or less
  unpadded; such clips raise ``MetricInputError`` here); logits are averaged over windows. The -1 dBFS
  peak normalisation stable-audio-metrics applies at load time is a loader step (the
  ``stable-audio-metrics`` input recipe of `agomni.io.prepare`), not part of this class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from agomni import weights
from agomni.errors import MetricInputError, UsageError
from agomni.metrics.embedders import Embedder
from agomni.metrics.embedders.common import GeluMlp, check_network_options, pad_or_crop, weights_info
from agomni.weights import load_strict

SAMPLE_RATE = 32000
CLIP_SAMPLES = 320000
N_FFT = 1024
WIN_LENGTH = 800
HOP_LENGTH = 320
N_MELS = 128
F_MIN = 0.0
F_MAX = 15000.0  # hear21passt: fmax=None -> sr // 2 - fmax_aug_range // 2 = 16000 - 1000
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
NORM_SHIFT = 4.5
NORM_SCALE = 5.0
N_CLASSES = 527
EMBED_DIM = 768
DEPTH = 12
NUM_HEADS = 12
PATCH = 16
STRIDE = 10
INPUT_TDIM = 998  # img_size of the official model: time positional embedding of 998 // 10 = 99 columns
WINDOW_HOP_SAMPLES = 5 * SAMPLE_RATE
MIN_WINDOW_SAMPLES = int(10 * SAMPLE_RATE * 0.15)
WEIGHTS_ENTRY = "passt-s-swa-p16-128-ap476"
VERSION = "1"

SegmentRule = Literal["first-10s", "windows-10s-hop-5s"]
SEGMENT_RULES: tuple[str, ...] = ("first-10s", "windows-10s-hop-5s")


class PasstMel(nn.Module):
    """hear21passt's eval-mode log-mel front end: [B, samples] -> [B, 128, 1 + (samples - 1) // 320]."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH, periodic=False), persistent=False)
        banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
            N_MELS, N_FFT, float(SAMPLE_RATE), F_MIN, F_MAX, 100.0, -500.0, 1.0
        )
        self.register_buffer("mel_basis", F.pad(banks, (0, 1)), persistent=False)  # [128, 513]
        self.register_buffer("preemphasis", torch.tensor([[[-PREEMPHASIS, 1.0]]]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv1d(x.unsqueeze(1), self.preemphasis).squeeze(1)
        spec = torch.stft(
            x,
            N_FFT,
            hop_length=HOP_LENGTH,
            win_length=WIN_LENGTH,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )
        power = spec.real**2 + spec.imag**2
        mel = torch.matmul(self.mel_basis, power)
        return (torch.log(mel + LOG_OFFSET) + NORM_SHIFT) / NORM_SCALE


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # scale head_dim ** -0.5, as upstream
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = GeluMlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=PATCH, stride=STRIDE)


class PasstNet(nn.Module):
    """The PaSST-S network with the official checkpoint's parameter names.

    ``forward(mel [B, 1, 128, T]) -> (logits [B, 527], embedding [B, 768])``. ``depth`` is 12 for the
    official model; tests use fewer blocks to stay fast.
    """

    def __init__(self, depth: int = DEPTH) -> None:
        super().__init__()
        grid_f, grid_t = N_MELS // STRIDE, INPUT_TDIM // STRIDE
        self.patch_embed = _PatchEmbed(EMBED_DIM)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, EMBED_DIM))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, EMBED_DIM))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, EMBED_DIM))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, EMBED_DIM, grid_f, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, EMBED_DIM, 1, grid_t))
        self.blocks = nn.Sequential(*[_Block(EMBED_DIM, NUM_HEADS) for _ in range(depth)])
        self.norm = nn.LayerNorm(EMBED_DIM, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(EMBED_DIM), nn.Linear(EMBED_DIM, N_CLASSES))
        self.head_dist = nn.Linear(EMBED_DIM, N_CLASSES)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed.proj(mel)  # [B, 768, 12, T']
        if x.shape[-1] > self.time_new_pos_embed.shape[-1]:
            raise MetricInputError(
                f"PaSST: {x.shape[-1]} time patches exceed the model's {self.time_new_pos_embed.shape[-1]} "
                "(input longer than 10 s)"
            )
        x = x + self.time_new_pos_embed[..., : x.shape[-1]] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        b = x.shape[0]
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        x = self.norm(self.blocks(torch.cat([cls, dist, x], dim=1)))
        embedding = (x[:, 0] + x[:, 1]) / 2
        return self.head(embedding), embedding


def _init_random(net: PasstNet, seed: int) -> None:
    """Seeded random weights in upstream's style (truncated normal std 0.02 for tokens, positional
    embeddings and Linear weights; zero biases; unit LayerNorms; default Conv2d init)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.ndim == 1:  # LayerNorm weights
                p.fill_(1.0)
            elif name == "patch_embed.proj.weight":
                bound = 1.0 / math.sqrt(PATCH * PATCH)
                p.uniform_(-bound, bound, generator=gen)
            else:
                p.normal_(0.0, 0.02, generator=gen).clamp_(-0.04, 0.04)


def window_starts(n_samples: int) -> list[int]:
    """Start samples of the stable-audio-metrics KL windows (10 s long, every 5 s) for a clip of
    ``n_samples`` at 32 kHz: ``range(0, max(5 s, n - 5 s), 5 s)``."""
    return list(range(0, max(WINDOW_HOP_SAMPLES, n_samples - WINDOW_HOP_SAMPLES), WINDOW_HOP_SAMPLES))


class PasstEmbedder(Embedder):
    """PaSST-S clip embeddings (``embed``: [B, 768]) and AudioSet logits (``logits``: [B, 527]) at 32 kHz.

    Build with ``PasstEmbedder()`` (official checkpoint via ``agomni.weights``, verified, loaded with
    ``weights_only=True`` and strict key matching), ``PasstEmbedder(random_weights=True, seed=...)``
    (seeded random weights for tests and latency; ``comparable_with_published`` is then False) or
    ``PasstEmbedder(state_dict=...)`` (weights in the official layout from elsewhere, e.g. a test).
    Inference runs in float32 under ``torch.inference_mode`` on ``device`` in batches of ``batch_size``;
    results come back as float32 CPU tensors.
    """

    name = "passt-s-swa-p16-128-ap476"
    sample_rate = SAMPLE_RATE
    version = VERSION
    output = "clip"
    heads = ("embed", "logits")

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        segment_rule: SegmentRule = "first-10s",
        random_weights: bool = False,
        seed: int = 0,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        min_samples: int = WIN_LENGTH,
        depth: int = DEPTH,
    ) -> None:
        if segment_rule not in SEGMENT_RULES:
            raise UsageError(f"PaSST: unknown segment_rule {segment_rule!r}; choose one of {SEGMENT_RULES}")
        check_network_options("PaSST", batch_size, random_weights, state_dict)
        self.segment_rule = segment_rule
        self.batch_size = batch_size
        self.min_samples = max(1, int(min_samples))
        self.random_weights = random_weights
        self.seed = seed
        self.depth = depth
        self.device = torch.device(device)
        self.mel = PasstMel()
        self.net = PasstNet(depth=depth)
        if random_weights:
            _init_random(self.net, seed)
            self.checkpoint = f"random-weights:{seed}"
            self.provenance: dict[str, Any] | None = None
            self.weights = weights_info("random", seed=seed, name=WEIGHTS_ENTRY)
        elif state_dict is not None:
            load_strict(self.net, _filter_official(state_dict), where="PaSST state_dict")
            self.checkpoint = "state-dict-argument"
            self.provenance = None
            self.weights = weights_info("state-dict-argument", name=WEIGHTS_ENTRY)
        else:
            state = weights.load_entry_state_dict(WEIGHTS_ENTRY)
            load_strict(
                self.net,
                _filter_official(state),
                where=f"{WEIGHTS_ENTRY} ({weights.cached_path(weights.get_entry(WEIGHTS_ENTRY))})",
            )
            self.provenance = weights.provenance(WEIGHTS_ENTRY)
            self.checkpoint = self.provenance["sha256"]
            self.weights = weights_info("registry", provenance=self.provenance)
        self.comparable_with_published = not random_weights and state_dict is None and depth == DEPTH
        self.mel.to(self.device).eval()
        self.net.to(self.device, torch.float32).eval()

    def config(self) -> dict[str, Any]:
        return {
            "arch": "passt_s_swa_p16_128_ap476",
            "checkpoint": self.checkpoint,
            "random_weights": self.random_weights,
            "seed": self.seed if self.random_weights else None,
            "depth": self.depth,
            "clip_samples": CLIP_SAMPLES,
            "length_rule": "first 320000 samples, zero-padded at the end (av-benchmark)",
            "segment_rule": self.segment_rule,
            "n_fft": N_FFT,
            "win_length": WIN_LENGTH,
            "window": "hann, periodic=False",
            "hop_length": HOP_LENGTH,
            "preemphasis": PREEMPHASIS,
            "n_mels": N_MELS,
            "mel": f"kaldi get_mel_banks {F_MIN}-{F_MAX} Hz",
            "log": f"ln(mel + {LOG_OFFSET}), (x + {NORM_SHIFT}) / {NORM_SCALE}",
            "min_samples": self.min_samples,
        }

    @property
    def dim(self) -> int:
        """Size of the embedding (768)."""
        return EMBED_DIM

    def _forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 320000 or fewer] -> (logits [N, 527], embedding [N, 768]) on the CPU, in batches."""
        logits, embeds = [], []
        for start in range(0, clips.shape[0], self.batch_size):
            chunk = clips[start : start + self.batch_size].to(self.device)
            lg, emb = self.net(self.mel(chunk).unsqueeze(1))
            logits.append(lg.float().cpu())
            embeds.append(emb.float().cpu())
        return torch.cat(logits), torch.cat(embeds)

    @torch.inference_mode()
    def embed_and_logits(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, samples] float32 at 32 kHz -> (embedding [B, 768], logits [B, 527]) of the first 10 s
        (zero-padded to 10 s), whatever ``segment_rule`` says (FD uses one pass per clip)."""
        x = self.check_waveform(waveform, min_samples=self.min_samples)
        logits, embeds = self._forward(pad_or_crop(x, CLIP_SAMPLES))
        return embeds, logits

    def outputs(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"embed": [B, 768], "logits": [B, 527]}``: one pass over the first 10 s; the logits of
        ``"windows-10s-hop-5s"`` take their own passes (one per window)."""
        embedding, logits = self.embed_and_logits(waveform)
        if self.segment_rule != "first-10s":
            logits = self.logits(waveform)
        return {"embed": embedding, "logits": logits}

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at 32 kHz -> [B, 768] embeddings (first 10 s, zero-padded)."""
        return self.embed_and_logits(waveform)[0]

    @torch.inference_mode()
    def logits(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at 32 kHz -> [B, 527] AudioSet logits under ``segment_rule``."""
        x = self.check_waveform(waveform, min_samples=self.min_samples)
        if self.segment_rule == "first-10s":
            return self._forward(pad_or_crop(x, CLIP_SAMPLES))[0]
        n = x.shape[1]
        if n <= MIN_WINDOW_SAMPLES:
            raise MetricInputError(
                f"{self.name}: {n} samples ({n / SAMPLE_RATE:.3f} s) is too short for the "
                f"windows-10s-hop-5s rule: the first window must be longer than {MIN_WINDOW_SAMPLES} "
                "samples (1.5 s) to be padded to 10 s"
            )
        starts = window_starts(n)
        windows = torch.stack([pad_or_crop(x[:, s : s + CLIP_SAMPLES], CLIP_SAMPLES) for s in starts], dim=1)
        logits = self._forward(windows.reshape(-1, CLIP_SAMPLES))[0]
        return logits.reshape(x.shape[0], len(starts), N_CLASSES).mean(dim=1)


def _filter_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """hear21passt's ``checkpoint_filter_fn`` for this checkpoint: a patch-embedding weight stored as a
    2-D matrix (models trained before conv patchification) is reshaped to [768, 1, 16, 16]."""
    out = dict(state)
    w = out.get("patch_embed.proj.weight")
    if w is not None and w.ndim < 4:
        out["patch_embed.proj.weight"] = w.reshape(EMBED_DIM, -1, PATCH, PATCH)
    return out


__all__ = ["PasstEmbedder", "PasstMel", "PasstNet", "window_starts"]

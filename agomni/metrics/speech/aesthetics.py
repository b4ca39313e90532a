"""Meta's Audiobox Aesthetics (CE / CU / PC / PQ) in agomni's own code, equal to the ``audiobox-aesthetics``
package's ``AesPredictor`` (same checkpoint layout, same windowing and aggregation).

- Audio: mono 16 kHz, cut into 10 s windows every 10 s, the last one zero-padded with its padding masked.
- Network: a WavLM-Base-sized encoder (``agomni.metrics.speech.wavlm``); per axis, a softmax-weighted sum
  of the 13 hidden states (input of the first layer and each layer's output), mean over the unpadded
  frames, L2 normalisation, a linear head; the output is de-normalised with the checkpoint's
  per-axis ``target_transform`` (x * std + mean).
- Per clip: the mean of its windows' scores weighted by each window's unpadded fraction.
Axes (scale about 1-10, higher is better): CE content enjoyment, CU content usefulness, PC production
complexity, PQ production quality.

Checkpoint: the package's format ``{"state_dict": {"model.<name>": tensor}, "model_cfg": {...},
"target_transform": {axis: {"mean", "std"}}}`` (loaded without pickled code), or a state dict with the
target transform given separately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import WeightsError
from agomni.metrics.speech.items import RANDOM_BACKEND, SetScore, mono_float, score_clips
from agomni.metrics.speech.wavlm import WavLM, WavLMConfig
from agomni.weights import load_checkpoint, load_strict

AXES = ("CE", "CU", "PC", "PQ")
SAMPLE_RATE = 16000
WINDOW = 10 * SAMPLE_RATE
HIDDEN_STATES = 13
RECIPE = "audiobox-aesthetics (AesPredictor: 10 s windows, length-weighted mean)"


class AestheticsNetwork(nn.Module):
    """WavLM encoder + per-axis layer weights and linear heads, with the package's parameter names."""

    def __init__(self, cfg: WavLMConfig | None = None):
        super().__init__()
        self.wavlm_model = WavLM(cfg or WavLMConfig())
        width = self.wavlm_model.cfg.embed_dim
        self.proj_layer = nn.ModuleDict({axis: nn.Sequential(nn.Linear(width, 1)) for axis in AXES})
        self.layer_weights = nn.ParameterDict(
            {axis: nn.Parameter(torch.full((HIDDEN_STATES,), 1.0 / HIDDEN_STATES)) for axis in AXES}
        )

    def forward(self, wav: torch.Tensor, padding_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised per-axis predictions [B] for windows [B, samples] (``padding_mask`` True = padding)."""
        states, frame_mask = self.wavlm_model.hidden_states(wav, padding_mask)
        stacked = torch.stack(states, dim=-1)  # B T C L
        keep = (~frame_mask)[..., None].to(stacked.dtype)
        out = {}
        for axis in AXES:
            embed = stacked @ torch.softmax(self.layer_weights[axis], dim=-1)
            embed = (embed * keep).sum(1) / keep.sum(1).clamp(min=1)
            out[axis] = self.proj_layer[axis](F.normalize(embed, dim=-1)).squeeze(-1)
        return out


def windows(audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """10 s windows of one clip: (windows [N, WINDOW], padding masks [N, WINDOW], weights [N])."""
    starts = range(0, audio.numel(), WINDOW)
    chunks = [audio[s : s + WINDOW] for s in starts]
    wavs = torch.stack([F.pad(c, (0, WINDOW - c.numel())) for c in chunks])
    padding = torch.stack([torch.arange(WINDOW) >= c.numel() for c in chunks])
    weights = torch.tensor([c.numel() / WINDOW for c in chunks])
    return wavs, padding, weights


class AudioboxAesthetics:
    """Scores clips with an ``AestheticsNetwork`` and the checkpoint's target transform."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        network: AestheticsNetwork,
        target_transform: Mapping[str, Mapping[str, float]],
        *,
        random_weights: bool,
        device: str = "cpu",
    ):
        missing = [axis for axis in AXES if axis not in target_transform]
        if missing:
            raise WeightsError(f"audiobox-aesthetics: target_transform lacks the axes {missing}")
        self.network = network.eval().to(device)
        self.transform = {axis: (float(t["mean"]), float(t["std"])) for axis, t in target_transform.items()}
        self.device = device
        self.random_weights = random_weights
        self.backend = "agomni audiobox-aesthetics" + (RANDOM_BACKEND if random_weights else "")

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu") -> AudioboxAesthetics:
        """The package's checkpoint file (see the module docstring), loaded without pickled code."""
        checkpoint = load_checkpoint(path)
        try:
            state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
            cfg: dict[str, Any] = checkpoint["model_cfg"]
            transform = checkpoint["target_transform"]
        except (KeyError, TypeError, AttributeError) as err:
            raise WeightsError(f"{path}: not an audiobox-aesthetics checkpoint ({err})") from err
        expected = {"proj_num_layer": 1, "nth_layer": HIDDEN_STATES, "use_weighted_layer_sum": True}
        differing = {k: cfg.get(k) for k, v in expected.items() if cfg.get(k, v) != v}
        if differing or not cfg.get("normalize_embed", True) or cfg.get("proj_ln", False):
            raise WeightsError(f"{path}: unsupported audiobox-aesthetics configuration {cfg}")
        network = AestheticsNetwork()
        load_strict(network, state, where=str(path))
        return cls(network, transform, random_weights=False, device=device)

    @torch.no_grad()
    def score(self, audio: np.ndarray) -> dict[str, float]:
        """CE / CU / PC / PQ of one mono 16 kHz clip."""
        wav = torch.from_numpy(mono_float(audio, "audio")).to(torch.float32)
        wavs, padding, weights = windows(wav)
        predictions = self.network(wavs.to(self.device), padding.to(self.device))
        out = {}
        for axis in AXES:
            mean, std = self.transform[axis]
            values = predictions[axis].cpu() * std + mean
            out[axis] = float((values * weights).sum() / weights.sum())
        return out


def audiobox_aesthetics(
    clips: Sequence[np.ndarray],
    model: AudioboxAesthetics,
    *,
    ids: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, SetScore]:
    """Audiobox Aesthetics of each clip (mono 16 kHz float arrays): one ``SetScore`` per axis."""

    def score(item_id: str, clip: np.ndarray) -> tuple[dict[str, float], tuple[str, ...]]:
        return {f"AUDIOBOX_{axis}": value for axis, value in model.score(clip).items()}, ()

    names = [f"AUDIOBOX_{axis}" for axis in AXES]
    return score_clips(
        clips,
        ids,
        score,
        names,
        "score (1-10)",
        RECIPE,
        model.backend,
        desc="Audiobox",
        progress=progress,
        name_item=False,
    )

"""Named channel-downmix policies for audio shaped ``[channels, samples]``.

``"mean"``  average of all channels -> ``[1, samples]`` (av-benchmark's ``waveform.mean(dim=0)``).
``"first"`` channel 0 only -> ``[1, samples]``.
``"keep"``  no downmix -> ``[channels, samples]`` unchanged.

Downmixing runs before resampling (as in av-benchmark), in the dtype of the input (float32 for decoded
audio). The policy name is recorded in every `AudioRecord`.
"""

from __future__ import annotations

import torch

from agomni.errors import UsageError

DOWNMIX_POLICIES: tuple[str, ...] = ("mean", "first", "keep")


def downmix(waveform: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the named downmix `policy` to ``[channels, samples]`` audio (see the module docstring)."""
    if policy not in DOWNMIX_POLICIES:
        raise UsageError(f"unknown downmix policy {policy!r}; choose one of {', '.join(DOWNMIX_POLICIES)}")
    if waveform.dim() != 2:
        raise UsageError(f"downmix needs audio shaped [channels, samples], got shape {tuple(waveform.shape)}")
    if policy == "mean":
        return waveform.mean(dim=0, keepdim=True)
    if policy == "first":
        return waveform[:1]
    return waveform

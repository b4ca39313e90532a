"""Named channel-downmix policies for audio shaped ``[channels, samples]``.

``"mean"``  average of all channels -> ``[1, samples]`` (av-benchmark's ``waveform.mean(dim=0)``).
``"first"`` channel 0 only -> ``[1, samples]``.
``"keep"``  no downmix -> ``[channels, samples]`` unchanged.
``"first-two"`` channels 0 and 1 -> ``[2, samples]``; a mono file is used as both (stable-audio-metrics'
          stereo OpenL3 embeddings: ``audio[:, 0]`` and ``audio[:, 1]``, mono copied to L and R).

Downmixing runs before resampling (as in av-benchmark), in the dtype of the input (float32 for decoded
audio). The policy name is recorded in every `AudioRecord`.
"""

from __future__ import annotations

import torch

from agomni.errors import UsageError

DOWNMIX_POLICIES: tuple[str, ...] = ("mean", "first", "keep", "first-two")


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
    if policy == "first-two":
        return waveform[:2] if waveform.shape[0] >= 2 else waveform[:1].expand(2, -1)
    return waveform

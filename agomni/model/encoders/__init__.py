"""The frozen conditioner encoders behind the `VideoConditioner` / `TextConditioner` protocols.

- `ClipVideoEncoder` (clip_video.py): DFN5B-CLIP ViT-H/14-384 image features at 8 fps, 1024-d (MMAudio).
- `SynchformerEncoder` (synchformer.py): Synchformer/MotionFormer sync features, 8 x 768-d per segment.
- `FlanT5TextConditioner` (flan_t5.py): Flan-T5-large encoder states, 1024-d (AudioGen-Omni's text stream).

Weights come only from the registry (`agomni.weights`), resolved when an encoder is built, never at
import; in offline mode a missing file is an OfflineError naming ``agomni weights import``.
`build_conditioners` returns either the random stand-ins or the real encoders, with their provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch

from ...errors import UsageError
from .clip_video import CLIP_WEIGHTS, DFN5B_VIT_H_14_384, ClipVideoEncoder
from .flan_t5 import FLAN_T5_LARGE, FLAN_T5_TOKENIZER, FLAN_T5_WEIGHTS, FlanT5TextConditioner
from .synchformer import SYNCHFORMER, SYNCHFORMER_WEIGHTS, SynchformerEncoder
from .video import EncoderVideoConditioner

if TYPE_CHECKING:
    from ..config import ModelConfig
    from ..generate import Conditioners

__all__ = [
    "ClipVideoEncoder",
    "EncoderVideoConditioner",
    "FlanT5TextConditioner",
    "SynchformerEncoder",
    "build_conditioners",
]


def build_conditioners(
    kind: Literal["random", "real"] = "random",
    *,
    config: ModelConfig,
    device: str | torch.device = "cpu",
    spec: Mapping[str, Any] | None = None,
) -> Conditioners:
    """The conditioners of a run at `config`'s feature widths.

    kind "random": the seeded stand-ins of `agomni.model.conditioners`, as `spec` (a checkpoint's
    ``extra["conditioners"]``) describes them (`agomni.model.generate.standin_conditioners`).
    kind "real": CLIP + Synchformer video and Flan-T5 text (`config.text_len` tokens) loaded from the
    registry onto `device`; UsageError (before any weights are loaded) when `config`'s clip/sync/text
    widths are not the encoders' (1024 / 768 / 1024: the S/M/L sizes, not the tiny ones). The record
    names each checkpoint and its SHA-256.
    """
    from .. import generate

    if kind == "random":
        return generate.standin_conditioners(config, spec)
    if kind != "real":
        raise UsageError(f"unknown conditioner kind {kind!r}; valid: 'random', 'real'")
    widths = {
        "clip_dim": (config.clip_dim, DFN5B_VIT_H_14_384.output_dim),
        "sync_dim": (config.sync_dim, SYNCHFORMER.embed_dim),
        "text_dim": (config.text_dim, FLAN_T5_LARGE.d_model),
    }
    wrong = [f"{name} {want} (encoder gives {got})" for name, (want, got) in widths.items() if want != got]
    if wrong:
        raise UsageError(
            f"model config {config.name} expects {', '.join(wrong)}; the real encoders fit the S/M/L sizes"
        )
    video = EncoderVideoConditioner(
        ClipVideoEncoder.from_registry(device=device), SynchformerEncoder.from_registry(device=device)
    )
    text = FlanT5TextConditioner.from_registry(length=config.text_len, device=device)
    record = {
        "video": {
            "class": type(video).__name__,
            "random_weights": False,
            "kind": "real",
            "checkpoints": {
                "clip": {"name": CLIP_WEIGHTS, "sha256": video.checkpoint_sha256["clip"]},
                "sync": {"name": SYNCHFORMER_WEIGHTS, "sha256": video.checkpoint_sha256["sync"]},
            },
        },
        "text": {
            "class": type(text).__name__,
            "random_weights": False,
            "kind": "real",
            "length_tokens": text.length,
            "checkpoints": {
                "encoder": {"name": FLAN_T5_WEIGHTS, "sha256": text.checkpoint_sha256},
                "tokenizer": {"name": FLAN_T5_TOKENIZER, "sha256": text.tokenizer_sha256},
            },
        },
    }
    return generate.Conditioners(video=video, text=text, record=record)

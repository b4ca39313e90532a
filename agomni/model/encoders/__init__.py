"""The frozen conditioner encoders behind the `VideoConditioner` / `TextConditioner` protocols.

- `ClipVideoEncoder` (clip_video.py): DFN5B-CLIP ViT-H/14-384 image features at 8 fps, 1024-d (MMAudio).
- `SynchformerEncoder` (synchformer.py): Synchformer/MotionFormer sync features, 8 x 768-d per segment.
- `FlanT5TextConditioner` (flan_t5.py): Flan-T5-large encoder states, 1024-d (AudioGen-Omni's text stream).

Weights come only from the registry (`agomni.weights`), resolved when an encoder is built, never at
import; in offline mode a missing file is an OfflineError naming ``agomni weights import``.
`agomni.model.conditioning.build_conditioners` builds either these or the random stand-ins.
"""

from __future__ import annotations

from .clip_video import CLIP_WEIGHTS, DFN5B_VIT_H_14_384, ClipVideoEncoder
from .flan_t5 import FLAN_T5_LARGE, FLAN_T5_TOKENIZER, FLAN_T5_WEIGHTS, FlanT5TextConditioner
from .synchformer import SYNCHFORMER, SYNCHFORMER_WEIGHTS, SynchformerEncoder
from .video import EncoderVideoConditioner

__all__ = [
    "CLIP_WEIGHTS",
    "DFN5B_VIT_H_14_384",
    "FLAN_T5_LARGE",
    "FLAN_T5_TOKENIZER",
    "FLAN_T5_WEIGHTS",
    "SYNCHFORMER",
    "SYNCHFORMER_WEIGHTS",
    "ClipVideoEncoder",
    "EncoderVideoConditioner",
    "FlanT5TextConditioner",
    "SynchformerEncoder",
]

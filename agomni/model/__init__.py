"""agomni's reference model: an MMDiT flow-matching network for video/text/lyrics-conditioned audio.

Submodules: config (sizes, sequence lengths), rope (PAAPI), layers, blocks, lt_encoder,
conditioners (frozen-encoder interfaces and random stand-ins), conditioning (item -> conditions, the
one path of training and generation), network (the MMDiT), flow_matching (the loss and the sampler),
fast (bf16 weights, CUDA graphs), sidecar / checkpoint (the checkpoint format), generate, profile,
params (parameter counts).
"""

from .config import SIZE_ALIASES, SIZES, ModelConfig, SequenceConfig, model_config
from .network import AgomniMMDiT, ModalityPresence, PreprocessedConditions, draw_presence
from .params import count_parameters, format_param_table

__all__ = [
    "SIZES",
    "SIZE_ALIASES",
    "AgomniMMDiT",
    "ModalityPresence",
    "ModelConfig",
    "PreprocessedConditions",
    "SequenceConfig",
    "count_parameters",
    "draw_presence",
    "format_param_table",
    "model_config",
]

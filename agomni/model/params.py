"""Parameter counts of the reference MMDiT per component, computed on the meta device (no memory, no weights).

What is counted matches MMAudio's published sizes (157 M / 622 M / 1031 M): every parameter of the
flow-prediction network (`sum(p.numel() for p in network.parameters())`), excluding the frozen
feature extractors (CLIP, Synchformer, text encoder), the VAE and the vocoder. agomni's network
additionally holds the LT stream (encoder, projections, its share of every joint block).
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .network import AgomniMMDiT

# Component -> parameter-name prefixes. Joint blocks are split by stream ("joint.<i>.<stream>.").
_PREFIXES = {
    "audio input projection": ("audio_in.",),
    "video input (CLIP + sync projections, nulls)": (
        "clip_in.",
        "sync_in.",
        "sync_pos",
        "null_sync",
        "video_cond.",
        "null_video",
    ),
    "text input (projection, null)": ("text_in.", "text_cond.", "null_text"),
    "LT encoder": ("lt_encoder.",),
    "LT input (projection, null)": ("lt_in.", "lt_cond.", "null_lt"),
    "global condition (t-embed, MLP)": ("t_embed.", "global_mlp."),
    "single blocks (audio)": ("single.",),
    "final layer": ("final.",),
}
_JOINT_STREAMS = {
    "audio": "joint blocks: audio",
    "video": "joint blocks: video",
    "text": "joint blocks: text",
    "lt": "joint blocks: LT",
}
_ORDER = [*list(_PREFIXES)[:6], *_JOINT_STREAMS.values(), *list(_PREFIXES)[6:]]
LT_COMPONENTS = ("LT encoder", "LT input (projection, null)", "joint blocks: LT")
LT_STREAM = "of which LT stream (sum of the LT rows)"
TOTAL = "total"


def _component(name: str) -> str:
    if name.startswith("joint."):
        return _JOINT_STREAMS[name.split(".")[2]]
    for component, prefixes in _PREFIXES.items():
        if name.startswith(prefixes):
            return component
    raise KeyError(f"parameter {name} belongs to no component of the parameter table")


def count_parameters(config: ModelConfig) -> dict[str, int]:
    """{component: parameters} for the network of `config`, plus LT_STREAM (sum of the LT components)
    and "total" (every network parameter); built on the meta device, so no memory is allocated."""
    with torch.device("meta"):
        model = AgomniMMDiT(config)
    counts = {c: 0 for c in _ORDER}
    for name, p in model.named_parameters():
        counts[_component(name)] += p.numel()
    counts[LT_STREAM] = sum(counts[c] for c in LT_COMPONENTS)
    counts[TOTAL] = sum(p.numel() for p in model.parameters())
    return counts


def format_param_table(config: ModelConfig) -> str:
    """Printable table: parameters (millions) and share of the total per component; total on the last line."""
    counts = count_parameters(config)
    total = counts[TOTAL]
    width = max(len(c) for c in counts)
    lines = [
        f"agomni reference MMDiT {config.name}: trainable network parameters (count, M = 1e6; "
        "excludes frozen CLIP/Synchformer/text encoders, VAE and vocoder)",
        f"{'component':<{width}}  {'params (M)':>11}  {'share':>6}",
    ]
    for component, n in counts.items():
        if component != TOTAL:
            lines.append(f"{component:<{width}}  {n / 1e6:>11.2f}  {100 * n / total:>5.1f}%")
    lines.append(f"{TOTAL:<{width}}  {total / 1e6:>11.2f}  {100.0:>5.1f}%")
    return "\n".join(lines)

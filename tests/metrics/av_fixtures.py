"""Small audio-visual scorers for tests that run the product's `agomni eval` / `agomni run` path.

`tiny_scorer` stands in for `agomni.metrics.av.score.build_scorer` with ``random_weights``: DeSync and
IB-score get one-block Synchformer / ImageBind networks (the full-size ones take minutes per clip on a
CPU); LSE-C / LSE-D get the product's own random-weights scorer (full SyncNet, Haar faces).
"""

from __future__ import annotations

import torch

from agomni.metrics.av import score as av_score
from agomni.metrics.av.desync import DeSyncScorer
from agomni.metrics.av.ib_score import IBScorer
from agomni.metrics.av.imagebind import ImageBindConfig, ImageBindTowers, TowerConfig
from agomni.metrics.av.synchformer_offsets import AudioTrunkConfig, SyncHeadConfig, Synchformer
from agomni.model.encoders.synchformer import MotionFormerConfig

BUILD_SCORER = av_score.build_scorer


def tiny_synchformer() -> Synchformer:
    return Synchformer(
        MotionFormerConfig(embed_dim=32, depth=1, heads=2),
        AudioTrunkConfig(dim=32, depth=1, heads=2, mlp=64),
        SyncHeadConfig(layers=1, heads=2),
    )


def tiny_towers() -> ImageBindTowers:
    tower = TowerConfig(dim=32, depth=1, heads=2, pre_norm=True, bias_kv=True)
    return ImageBindTowers(ImageBindConfig(vision=tower, audio=tower, out_dim=16))


def tiny_scorer(metric: str, *, random_weights: bool, seed: int, device: str, **options):
    assert random_weights
    if metric in ("lse_c", "lse_d"):
        return BUILD_SCORER(metric, random_weights=True, seed=seed, device=device, **options)
    torch.manual_seed(seed)
    if metric == "desync":
        return DeSyncScorer(tiny_synchformer(), random_weights=True, device=device, **options)
    return IBScorer(tiny_towers(), random_weights=True, device=device, **options)

"""agomni metrics: each metric as a function on arrays and as an accumulator (update / compute / reset).

Every result carries its name, unit, direction (``higher_is_better``) and the reference recipe it
reproduces. Embedding networks live in ``agomni.metrics.embedders``; how metrics declare their state and
units is described in ``agomni.metrics.base``.
"""

from agomni.metrics.base import Metric, MetricResult
from agomni.metrics.embedders import Embedder
from agomni.metrics.embedders.offline import SpectralStatsEmbedder, offline_embedder
from agomni.metrics.frechet import (
    FrechetDistance,
    FrechetDistanceInf,
    GaussianStats,
    InfiniteNFit,
    extrapolate_to_infinite_n,
    fad_inf,
    fad_inf_sizes,
    frechet_distance,
)
from agomni.metrics.inception_score import InceptionScore, inception_score
from agomni.metrics.kad import KernelAudioDistance, kernel_audio_distance, median_pairwise_distance
from agomni.metrics.kl import KLDivergence, PairedKL, kl_divergence
from agomni.metrics.speech import cer, wer

__all__ = [
    "Embedder",
    "FrechetDistance",
    "FrechetDistanceInf",
    "GaussianStats",
    "InceptionScore",
    "InfiniteNFit",
    "KLDivergence",
    "KernelAudioDistance",
    "Metric",
    "MetricResult",
    "PairedKL",
    "SpectralStatsEmbedder",
    "cer",
    "extrapolate_to_infinite_n",
    "fad_inf",
    "fad_inf_sizes",
    "frechet_distance",
    "inception_score",
    "kernel_audio_distance",
    "kl_divergence",
    "median_pairwise_distance",
    "offline_embedder",
    "wer",
]

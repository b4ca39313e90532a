"""`agomni eval`: score generated audio against reference audio with named metrics and profiles.

Flow: `inputs` (which files, pairing, unused files) -> `agomni.io.prepare` (decode, downmix, resample,
crop/pad, by the profile's recipe) -> embedders from the `registry` (`networks`), cached by content
(`agomni.metrics.cache`) -> metric accumulators (`scoring`) -> the per-item stages (`item_stages`:
audio-visual, text-audio, speech) -> `agomni.results.Results` (`pipeline.evaluate`). `profiles` holds the
reference recipes.
"""

from agomni.evaluate.pipeline import EvalOutcome, EvalRequest, evaluate
from agomni.evaluate.profiles import PROFILES, Profile, get_profile
from agomni.evaluate.registry import ALIASES, METRICS, EmbedderSpec, MetricEntry, resolve_metric_names

__all__ = [
    "ALIASES",
    "METRICS",
    "PROFILES",
    "EmbedderSpec",
    "EvalOutcome",
    "EvalRequest",
    "MetricEntry",
    "Profile",
    "evaluate",
    "get_profile",
    "resolve_metric_names",
]

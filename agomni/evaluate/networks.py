"""The networks of one `agomni eval` run: one embedder under one input recipe (a profile's), built once
however many metrics read its heads, and the metric states that read them.

The embedders live for the item loop only: `NetworkSummary` keeps what the results say of them, so that
the pipeline releases them before the per-item stages build their own networks (each stage, in turn,
builds one network at a time and releases it after its pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from agomni.errors import AgomniError, NotAvailableYet, UsageError
from agomni.evaluate.profiles import Profile
from agomni.evaluate.registry import CheckpointIdentity, MetricEntry, build_embedder, checkpoint_identity
from agomni.evaluate.scoring import MetricState
from agomni.io.prepare import Recipe
from agomni.metrics.cache import EmbeddingKey
from agomni.metrics.embedders import Embedder
from agomni.results import NotComputed


@dataclass(frozen=True)
class Network:
    """One embedder under one input recipe: one cache entry per clip holds all its heads."""

    label: str
    embedder: Embedder
    checkpoint: CheckpointIdentity
    recipe: Recipe
    profile: str

    @property
    def preparation(self) -> dict[str, Any]:
        return {"sample_rate": self.embedder.needs.sample_rate, "recipe": self.recipe.to_dict()}

    def key(self, audio_hash: str) -> EmbeddingKey:
        return EmbeddingKey(
            audio_hash, self.embedder.name, self.embedder.cache_key(), self.checkpoint.key, self.preparation
        )

    def describe(self) -> dict[str, Any]:
        """What the run's provenance records of the network."""
        return {
            **self.embedder.metadata(),
            "cache_key": self.embedder.cache_key(),
            "checkpoint": self.checkpoint.key,
            "random_weights": self.checkpoint.random_weights,
            "profile": self.profile,
            "needs": self.embedder.needs.to_dict(),
            "preprocessing": self.preparation,
        }


@dataclass(frozen=True)
class NetworkSummary:
    """What a run's results keep of its embedder networks once they are released: their provenance
    (`Network.describe` by label), checkpoint records, and whether they compare with published numbers /
    ran on random weights."""

    described: dict[str, dict[str, Any]]
    checkpoints: dict[str, Any]
    comparable: bool
    random_weights: bool

    @classmethod
    def of(cls, networks: list[Network]) -> NetworkSummary:
        return cls(
            described={n.label: n.describe() for n in networks},
            checkpoints={
                n.checkpoint.record_name: n.checkpoint.record for n in networks if n.checkpoint.record
            },
            comparable=all(
                n.embedder.comparable_with_published and not n.checkpoint.random_weights for n in networks
            ),
            random_weights=any(n.checkpoint.random_weights for n in networks),
        )


def build_networks(
    entries: list[MetricEntry],
    profiles: dict[str, Profile],
    *,
    device: str,
    seed: int,
    random_weights: bool,
    strict: bool = False,
) -> tuple[list[Network], list[MetricState], list[NotComputed]]:
    """One `Network` per (embedder, profile), one `MetricState` per metric, and the metrics whose network
    could not be built (its weights missing or unloadable: "not computed", unless ``strict`` re-raises)."""
    networks: dict[tuple[str, str], Network] = {}
    failed: dict[tuple[str, str], Exception] = {}
    metrics, not_computed = [], []
    for entry in entries:
        profile, spec = profiles[entry.name], entry.embedder
        if (spec.name, profile.name) in failed:
            not_computed.append(NotComputed.of(entry.name, failed[(spec.name, profile.name)]))
            continue
        if (spec.name, profile.name) not in networks:
            torch.manual_seed(seed)
            options = dict(profile.embedder_options.get(spec.name, {}))
            try:
                embedder = build_embedder(
                    spec, options, device=device, seed=seed, random_weights=random_weights
                )
            except (AgomniError, OSError, RuntimeError) as err:
                if strict or isinstance(err, (UsageError, NotAvailableYet)):  # refused before any work
                    raise
                failed[(spec.name, profile.name)] = err
                not_computed.append(NotComputed.of(entry.name, err))
                continue
            identity = checkpoint_identity(embedder, spec)
            label = f"{spec.name}@{profile.name}"
            networks[(spec.name, profile.name)] = Network(
                label, embedder, identity, profile.recipe_for(spec.name), profile.name
            )
        network = networks[(spec.name, profile.name)]
        if entry.head not in network.embedder.heads:
            raise UsageError(f"metric {entry.name}: embedder {spec.name!r} has no {entry.head!r} output")
        pooling = profile.pooling_for(spec.name) if network.embedder.output == "frames" else "clip"
        metrics.append(MetricState(entry, profile, network.label, pooling, seed=seed))
    return list(networks.values()), metrics, not_computed

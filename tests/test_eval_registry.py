"""The metric registry (names, aliases, factories, checkpoint identity), profiles and crop/pad."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agomni.errors import NotAvailableYet, UsageError
from agomni.evaluate import METRICS, PROFILES, get_profile, resolve_metric_names
from agomni.evaluate.registry import EmbedderSpec, build_embedder, checkpoint_identity
from agomni.io.prepare import prepare_waveform, recipe
from agomni.metrics import offline_embedder

SPEC = EmbedderSpec("net", "agomni.metrics.embedders.offline", "offline_embedder", {"name": "mel-stats"})
SHA = "ab" * 32


def test_alias_spelling_maps_to_canonical_names() -> None:
    names = ["fd-mel-stats", "KAD_OFFLINE", "fd-mfcc-stats", "fad-vggish", "kl-panns", "is-panns", "fd-passt"]
    assert [e.name for e in resolve_metric_names(names)] == [
        "fd_offline",
        "kad_offline",
        "fd_mfcc_stats",
        "fad_vggish",
        "kl_panns",
        "is_panns",
        "fd_passt",
    ]
    for entry in METRICS.values():
        assert resolve_metric_names([entry.alias]) == [entry]


def test_name_errors() -> None:
    with pytest.raises(UsageError, match="named twice"):
        resolve_metric_names(["fd_offline", "fd-mel-stats"])
    with pytest.raises(UsageError, match="unknown metric 'nope'"):
        resolve_metric_names(["nope"])
    with pytest.raises(UsageError, match="no metrics"):
        resolve_metric_names([" "])
    with pytest.raises(NotAvailableYet, match="not available in this version: use `--metrics wer`"):
        resolve_metric_names(["wer_offline"])


def test_factory_paths_missing_module_and_missing_factory() -> None:
    embedder = build_embedder(SPEC, {}, device="cpu", seed=0)
    assert embedder.name == "mel-stats"
    with pytest.raises(NotAvailableYet, match=r"agomni\.metrics\.embedders\.absent.*not installed"):
        build_embedder(EmbedderSpec("x", "agomni.metrics.embedders.absent", "f"), {}, device="cpu", seed=0)
    with pytest.raises(NotAvailableYet, match=r"has no Nothing\.here"):
        build_embedder(EmbedderSpec("x", SPEC.module, "Nothing.here"), {}, device="cpu", seed=0)
    with pytest.raises(UsageError, match="no random-weights variant"):
        build_embedder(SPEC, {}, device="cpu", seed=0, random_weights=True)
    with pytest.raises(UsageError, match="CPU only"):
        build_embedder(SPEC, {}, device="cuda:0", seed=0)


@pytest.mark.parametrize(
    ("attributes", "key", "trust"),
    [
        (
            {"weights": {"source": "registry", "sha256": SHA, "trust_class": "pinned", "name": "net"}},
            SHA,
            "pinned",
        ),
        ({"weights": {"source": "file", "sha256": SHA, "pinned": False}}, SHA, "tofu"),
        ({"weights": {"sha256": SHA, "trust_class": "tofu", "name": "net"}}, SHA, "tofu"),
        (
            {"random_weights": True, "weights": {"random_weights": True, "seed": 3}},
            "random-weights:3",
            "random-weights",
        ),
        ({"weights": {"random_weights": True, "seed": 5}}, "random-weights:5", "random-weights"),
    ],
)
def test_checkpoint_identity_conventions(attributes: dict, key: str, trust: str) -> None:
    embedder = offline_embedder("mel-stats")
    for name, value in attributes.items():
        setattr(embedder, name, value)
    identity = checkpoint_identity(embedder, SPEC)
    assert identity.key == key and identity.record.trust == trust
    assert identity.random_weights == (trust == "random-weights")


def test_checkpoint_identity_refuses_untraceable_networks_and_keys_offline_as_none() -> None:
    embedder = offline_embedder("mel-stats")
    with pytest.raises(UsageError, match="no checkpoint SHA-256"):
        checkpoint_identity(embedder, SPEC)
    offline = EmbedderSpec("mel-stats", SPEC.module, SPEC.factory, weights=False)
    identity = checkpoint_identity(embedder, offline)
    assert (identity.key, identity.record) == ("none", None)


def test_profiles_are_data_with_the_documented_recipes() -> None:
    assert set(PROFILES) == {
        "av-benchmark",
        "audioldm-eval",
        "stable-audio-metrics",
        "fadtk",
        "agomni-offline",
    }
    assert get_profile("stable-audio-metrics").kl_direction == "gen_ref"
    assert get_profile("stable-audio-metrics").resampler == "soxr-hq"
    assert get_profile("av-benchmark").kl_direction == "ref_gen"
    assert (get_profile("av-benchmark").is_splits, get_profile("av-benchmark").is_seed) == (10, 2020)
    av = get_profile("av-benchmark")
    assert [av.uses_for(m, k) for m, k in [("fd_vggish", "fd"), ("fd_passt", "fd"), ("kl_panns", "kl")]] == [
        "all",
        "pairs",
        "pairs",
    ]
    assert av.uses_for("is_panns", "is") == "all" and av.recipe_for("passt").max_seconds == 8.0
    with pytest.raises(UsageError, match="unknown profile"):
        get_profile("nope")


def test_crop_and_minimum_length_against_numpy() -> None:
    x = np.arange(1, 8, dtype=np.float32)[None, :] / 10  # 7 samples
    t = torch.from_numpy(x)
    out, steps = prepare_waveform(t, 10, 10, recipe("agomni-offline", max_seconds=0.5))
    assert np.array_equal(out.numpy(), x[0, :5]) and steps["samples_cropped"] == 2
    out, steps = prepare_waveform(t, 10, 10, recipe("fadtk", min_seconds=0.95))
    assert (
        np.allclose(out.numpy(), np.pad(np.round(x[0] * 32768) / 32768, (0, 3)))
        and steps["samples_zero_padded"] == 3
    )
    out, _ = prepare_waveform(t, 10, 10, recipe("agomni-offline", min_seconds=0.5))
    assert np.array_equal(out.numpy(), x[0])  # already long enough


NETWORK_SPECS = list({e.embedder.name: e.embedder for e in METRICS.values() if e.embedder.weights}.values())


@pytest.mark.parametrize("spec", NETWORK_SPECS, ids=lambda s: s.name)
def test_network_registry_lines_name_real_factories_with_matching_arguments(spec: EmbedderSpec) -> None:
    import inspect

    from agomni.evaluate.registry import _factory

    for path, kwargs in ((spec.factory, spec.kwargs), (spec.random_factory, spec.random_kwargs)):
        signature = inspect.signature(_factory(spec, path))
        signature.bind_partial(**kwargs)  # raises TypeError if the registry line does not fit
        assert "device" in signature.parameters
    assert "seed" in inspect.signature(_factory(spec, spec.random_factory)).parameters


@pytest.mark.parametrize("name", ["fd_vggish", "fad_vggish", "kl_panns", "kl_passt"])
def test_network_embedders_build_with_random_weights_under_their_default_profile(name: str) -> None:
    entry = METRICS[name]
    embedder = build_embedder(entry.embedder, {}, device="cpu", seed=3, random_weights=True)
    identity = checkpoint_identity(embedder, entry.embedder)
    assert identity.key == "random-weights:3" and identity.random_weights
    assert not embedder.comparable_with_published
    assert entry.head in embedder.heads


def test_checkpoint_identity_reads_only_the_weights_record() -> None:
    """One convention: an embedder showing a hash only under another attribute is refused."""
    embedder = offline_embedder("mel-stats")
    embedder.provenance = {"sha256": SHA, "trust_class": "pinned"}  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="no checkpoint SHA-256"):
        checkpoint_identity(embedder, SPEC)
    embedder.weights = {"sha256": None, "trust_class": "unverified", "random_weights": False}  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="could not be traced"):
        checkpoint_identity(embedder, SPEC)


@pytest.mark.parametrize("name", ["fd_vggish", "fd_panns", "fd_passt", "fd_clap", "fd_clap_music"])
def test_every_network_embedder_exposes_the_same_weights_record(name: str) -> None:
    entry = METRICS[name]
    embedder = build_embedder(
        entry.embedder,
        {},
        device="cpu",
        seed=4,
        random_weights=True,
    )
    record = embedder.weights  # type: ignore[attr-defined]
    assert {k: record[k] for k in ("source", "trust_class", "random_weights", "seed", "sha256")} == {
        "source": "random",
        "trust_class": "random",
        "random_weights": True,
        "seed": 4,
        "sha256": None,
    }
    assert record["name"]  # the registry entry the real weights would come from
    assert checkpoint_identity(embedder, entry.embedder).key == "random-weights:4"


def test_aliases_are_unique_and_fad_inf_has_its_own_spelling() -> None:
    from agomni.evaluate import ALIASES

    assert len(ALIASES) == len(METRICS)
    assert ALIASES["fad-vggish"] == "fad_vggish" and ALIASES["fad-inf-vggish"] == "fad_inf_vggish"
    assert ALIASES["fd-clap-laion-audio"] == "fd_clap" and ALIASES["fd-clap-laion-music"] == "fd_clap_music"
    assert METRICS["fd_clap"].embedder.kwargs == {"model": "630k-audioset-best", "profile": "fadtk"}
    assert METRICS["fd_clap_music"].embedder.kwargs == {"model": "music-audioset-90.14", "profile": "fadtk"}

"""`agomni.model.conditioning.build_conditioners` and the registry path of the encoders (tiny checkpoints imported into a
temporary cache under test-only registry entries; nothing is downloaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from agomni import weights
from agomni.errors import OfflineError, UsageError, WeightsError
from agomni.model.checkpoint import default_codec_reference, save_checkpoint
from agomni.model.conditioners import RandomTextConditioner, RandomVideoConditioner
from agomni.model.conditioning import ConditionerSpec, build_conditioners
from agomni.model.config import SequenceConfig, model_config
from agomni.model.encoders import EncoderVideoConditioner
from agomni.model.encoders.clip_video import ClipVideoEncoder, ClipVisionConfig, ClipVisionTower
from agomni.model.encoders.flan_t5 import FlanT5TextConditioner, T5Encoder, T5EncoderConfig
from agomni.model.encoders.synchformer import MotionFormer, MotionFormerConfig, SynchformerEncoder
from agomni.model.generate import generate
from agomni.model.network import AgomniMMDiT
from agomni.weights.registry import REGISTRY

from .encoder_fixtures import make_spiece_model

CLIP_TINY = ClipVisionConfig(image_size=28, patch_size=14, width=16, layers=1, heads=2, output_dim=8)
SYNC_TINY = MotionFormerConfig(
    image_size=32, patch_size=16, frames=16, time_patch=2, embed_dim=8, depth=1, heads=2
)


def _entry(name: str, filename: str) -> weights.WeightsEntry:
    return weights.WeightsEntry(
        name=name,
        filename=filename,
        url=None,
        size_bytes=None,
        size_exact=False,
        licence="test",
        metrics=("test",),
        pin=None,
        checksum_search="test file",
        manual="test",
    )


@pytest.fixture
def home(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    return tmp_path


def test_random_kind_gives_the_seeded_standins():
    spec = ConditionerSpec.from_dict({"video": {"kind": "random", "seed": 3}}, "test")
    conditioners = build_conditioners(spec, model_config("tiny"))
    assert isinstance(conditioners.video, RandomVideoConditioner)
    assert isinstance(conditioners.text, RandomTextConditioner)
    assert conditioners.record["video"] == {
        "class": "RandomVideoConditioner",
        "random_weights": True,
        "kind": "random",
        "seed": 3,
    }
    with pytest.raises(WeightsError, match=r"test: conditioners\.video\.kind: 'clip'"):
        ConditionerSpec.from_dict({"video": {"kind": "clip"}}, "test")


def test_real_kind_checks_widths_before_loading_and_honours_offline_mode(home):
    real = ConditionerSpec(video_kind="real", text_kind="real")
    with pytest.raises(UsageError, match="clip_dim 32 \\(encoder gives 1024\\)"):
        build_conditioners(real, model_config("tiny"))
    with pytest.raises(OfflineError, match="agomni weights import"):
        build_conditioners(real, model_config("S"))


def test_encoders_load_registry_files_and_record_their_sha256(home):
    torch.manual_seed(0)
    clip_file, sync_file = home / "clip.bin", home / "sync.safetensors"
    tower = ClipVisionTower(CLIP_TINY)
    clip_state = {f"visual.{k}": v for k, v in tower.state_dict().items()}
    clip_state["logit_scale"] = torch.ones(())  # the text side of an open_clip file is ignored
    torch.save(clip_state, clip_file)
    motion = MotionFormer(SYNC_TINY)
    sync_state = {f"vfeat_extractor.{k}": v.contiguous() for k, v in motion.state_dict().items()}
    sync_state["afeat_extractor.norm.weight"] = torch.ones(4)
    save_file(sync_state, str(sync_file))
    clip_entry, sync_entry = _entry("test-clip", "clip.bin"), _entry("test-sync", "sync.safetensors")
    with weights.registered(clip_entry, sync_entry):
        weights.import_file(clip_entry, clip_file)
        weights.import_file(sync_entry, sync_file)
        clip = ClipVideoEncoder.from_registry(weights_name="test-clip", config=CLIP_TINY)
        sync = SynchformerEncoder.from_registry(weights_name="test-sync", config=SYNC_TINY)
    assert clip.checkpoint_sha256 == hashlib.sha256(clip_file.read_bytes()).hexdigest()
    assert sync.checkpoint_sha256 == hashlib.sha256(sync_file.read_bytes()).hexdigest()
    assert not clip.random_weights and not sync.random_weights
    assert torch.equal(clip.tower.proj, tower.proj)
    assert torch.equal(sync.model.temp_embed, motion.temp_embed)
    video = EncoderVideoConditioner(clip, sync)
    sequence = SequenceConfig(duration_s=1.0, sample_rate=16_000, mel_hop=256)
    frames = torch.rand(1, 26, 3, 30, 40, generator=torch.Generator().manual_seed(0))
    features = video.encode(frames, 25.0, sequence)
    assert features.clip.shape == (1, 8, 8) and features.sync.shape == (1, 16, 8)
    assert torch.equal(features.clip, clip.encode_clip(frames, 25.0, sequence))
    assert video.checkpoint_sha256 == {"clip": clip.checkpoint_sha256, "sync": sync.checkpoint_sha256}


def test_flan_t5_loads_registry_files_and_records_their_sha256(home):
    pytest.importorskip("sentencepiece")
    config = T5EncoderConfig(vocab_size=50, d_model=8, d_kv=4, d_ff=12, num_layers=1, num_heads=2)
    torch.manual_seed(0)
    encoder = T5Encoder(config)
    state = {k: v.contiguous() for k, v in encoder.state_dict().items()}
    state["decoder.final_layer_norm.weight"] = torch.ones(8)  # a full T5 file: the decoder is ignored
    weights_file = home / "t5.safetensors"
    save_file(state, str(weights_file))
    spiece = make_spiece_model(home, ["a dog barks"])
    model_entry, spiece_entry = _entry("test-t5", "model.safetensors"), _entry("test-spiece", "spiece.model")
    with weights.registered(model_entry, spiece_entry):
        weights.import_file(model_entry, weights_file)
        weights.import_file(spiece_entry, spiece)
        text = FlanT5TextConditioner.from_registry(
            length=12, weights_name="test-t5", tokenizer_name="test-spiece", config=config
        )
    assert text.checkpoint_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert text.tokenizer_sha256 == hashlib.sha256(spiece.read_bytes()).hexdigest()
    assert not text.random_weights
    assert torch.equal(text.encoder.shared.weight, encoder.shared.weight)
    assert text.encode(["a dog barks"]).shape == (1, 12, 8)


def test_registry_entries_for_the_encoders():
    clip = REGISTRY["dfn5b-clip-vit-h-14-384"]
    assert clip.pin is not None and clip.pin.kind == "sha256"
    assert (
        clip.url
        == "https://huggingface.co/apple/DFN5B-CLIP-ViT-H-14-378/resolve/main/open_clip_pytorch_model.bin"
    )
    assert REGISTRY["flan-t5-large"].url.endswith("google/flan-t5-large/resolve/main/model.safetensors")
    assert REGISTRY["flan-t5-large-spiece"].filename == "spiece.model"
    assert "synchformer-24-01-04T16-39-21" in REGISTRY


def test_a_checkpoint_naming_the_real_encoders_builds_them_in_generate(tmp_path):
    """generate() builds the sidecar's "real" conditioners through build_conditioners, which refuses a
    tiny config (its feature widths are not the encoders') before loading any weights."""
    config = model_config("tiny")
    path = save_checkpoint(
        tmp_path / "real",
        network_state=AgomniMMDiT(config).state_dict(),
        config=config,
        step=1,
        codec=default_codec_reference(config),
        conditioners=ConditionerSpec(video_kind="real", text_kind="real"),
    )
    with pytest.raises(UsageError, match="1024"):
        generate([], path)

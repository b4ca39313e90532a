"""Mel VAE, vocoder and AudioCodec: shapes on the real 8 s grids, strict loading, random-weights label."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from agomni.errors import UsageError, WeightsError
from agomni.model.codec import CODEC_16K, CODEC_44K, AudioCodec, CodecConfig, codec_config
from agomni.model.codec.vae import VAE_16K, VAE_44K, DiagonalGaussian, MelVAE
from agomni.model.codec.vocoder import VOCODER_16K, VOCODER_44K, SnakeBeta, Vocoder, VocoderConfig

# (config, 8 s mel frames, latent frames and samples MMAudio uses: sequence_config.py / extraction script)
GRIDS = [(CODEC_16K, 500, 250, 128000), (CODEC_44K, 690, 345, 353280)]


@pytest.mark.parametrize(("cfg", "mel_frames", "latents", "samples"), GRIDS, ids=["16k", "44k"])
def test_full_size_parts_on_8s_grid(cfg: CodecConfig, mel_frames: int, latents: int, samples: int) -> None:
    """The real-size VAE and vocoder, run on the meta device (shapes only, no memory or compute)."""
    with torch.device("meta"):
        vae, vocoder = MelVAE(cfg.vae), Vocoder(cfg.vocoder)
        posterior = vae.encode(torch.zeros(2, cfg.mel.n_mels, mel_frames))
        mel = vae.decode(posterior.mean)
        wave = vocoder(mel)
    assert posterior.mean.shape == posterior.std.shape == (2, cfg.vae.latent_channels, latents)
    assert mel.shape == (2, cfg.mel.n_mels, mel_frames)
    assert wave.shape == (2, samples)


def test_mmaudio_sizes_and_upsampling() -> None:
    # MMAudio VAE_16k / VAE_44k: 80 -> 20 and 128 -> 40 channels; BigVGAN rates multiply to the hop.
    assert (VAE_16K.mel_channels, VAE_16K.latent_channels, VAE_44K.mel_channels, VAE_44K.latent_channels) == (
        80, 20, 128, 40,
    )  # fmt: skip
    assert math.prod(VOCODER_16K.upsample_rates) == 256 == CODEC_16K.mel.hop
    assert math.prod(VOCODER_44K.upsample_rates) == 512 == CODEC_44K.mel.hop


@pytest.mark.parametrize(("cfg", "published_millions"), [(VOCODER_16K, 112), (VOCODER_44K, 122)])
def test_vocoder_parameter_count_matches_bigvgan(cfg: VocoderConfig, published_millions: int) -> None:
    # BigVGAN README: 112M for the 1536-channel v1 generators; model card of
    # bigvgan_v2_44khz_128band_512x: 122M parameters.
    with torch.device("meta"):
        n = sum(p.numel() for p in Vocoder(cfg).parameters())
    assert abs(n / 1e6 - published_millions) < 1.0


def test_mismatched_hop_is_refused() -> None:
    bad = VocoderConfig(n_mels=80, upsample_rates=(4, 4, 2), upsample_kernels=(8, 8, 4), initial_channels=64)
    with pytest.raises(UsageError, match="must equal the 16k mel hop 256"):
        CodecConfig(
            mel=CODEC_16K.mel, vae=CODEC_16K.vae, vocoder=bad, vae_weights_name="a", vocoder_weights_name="b"
        )


@pytest.mark.parametrize(("rate", "latents", "samples"), [("16k", 250, 128000), ("44k", 345, 353280)])
def test_tiny_codec_round_trip_8s(rate: str, latents: int, samples: int) -> None:
    cfg = codec_config(rate, tiny=True)
    codec = AudioCodec.load(cfg, vae=None, vocoder=None)
    n = 8 * cfg.mel.sample_rate  # 128000 / 352800: the 44.1 kHz one is padded up to 345 latent frames
    wave = torch.rand(2, n, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        post = codec.encode(wave)
        z = post.sample(torch.Generator().manual_seed(1))
        mel = codec.decode(z)
        full = codec.decode_to_wave(z)
        cut = codec.decode_to_wave(z, num_samples=post.num_samples)
    assert post.mean.shape == post.std.shape == z.shape == (2, latents, cfg.vae.latent_channels)
    assert post.num_samples == n and bool((post.std > 0).all()) and not torch.equal(z, post.mean)
    assert mel.shape == (2, cfg.mel.n_mels, 2 * latents)
    assert full.shape == (2, samples) and cut.shape == (2, n)
    assert torch.equal(cut, full[:, :n]) and float(full.abs().max()) <= 1.0
    assert codec.latent_frame_rate == cfg.mel.sample_rate / cfg.mel.hop / 2


def test_encode_pads_to_latent_grid_with_zeros() -> None:
    codec = AudioCodec.load(codec_config("16k", tiny=True), vae=None, vocoder=None)
    wave = torch.rand(1, 1000) - 0.5  # 1000 samples -> ceil(1000 / 512) = 2 latent frames
    with torch.no_grad():
        short = codec.encode(wave)
        padded = codec.encode(torch.nn.functional.pad(wave, (0, 24)))  # 1024 samples, explicit zeros
    assert short.mean.shape[1] == 2 and short.num_samples == 1000
    torch.testing.assert_close(short.mean, padded.mean)


def test_bad_inputs_are_refused() -> None:
    codec = AudioCodec.load(codec_config("16k", tiny=True), vae=None, vocoder=None)
    with pytest.raises(UsageError, match="NaN"):
        codec.encode(torch.full((1, 1024), float("nan")))
    with pytest.raises(UsageError, match="batch, samples"):
        codec.encode(torch.zeros(1024))
    with pytest.raises(UsageError, match="latent"):
        codec.decode(torch.zeros(1, 4, 7))
    with pytest.raises(UsageError, match="num_samples"):
        codec.decode_to_wave(torch.zeros(1, 2, 20), num_samples=1025)
    with pytest.raises(UsageError, match="even number"):
        codec.vae.encode(torch.zeros(1, 80, 5))


def test_random_weights_label_and_seed() -> None:
    cfg = codec_config("16k", tiny=True)
    a = AudioCodec.load(cfg, vae=None, vocoder=None, seed=3)
    b = AudioCodec.load(cfg, vae=None, vocoder=None, seed=3)
    c = AudioCodec.load(cfg, vae=None, vocoder=None, seed=4)
    assert a.random_weights and a.provenance == {"vae": "random (seed 3)", "vocoder": "random (seed 3)"}
    assert AudioCodec(cfg).random_weights
    w = "vae.encoder.conv_in.weight"
    assert torch.equal(a.state_dict()[w], b.state_dict()[w]) and not torch.equal(
        a.state_dict()[w], c.state_dict()[w]
    )
    half = AudioCodec.load(cfg, vae=a.vae.state_dict(), vocoder=None)
    assert half.random_weights and half.provenance["vae"] == "in-memory state dict"


def test_load_from_safetensors_reproduces_outputs(tmp_path) -> None:
    cfg = codec_config("44k", tiny=True)
    src = AudioCodec.load(cfg, vae=None, vocoder=None, seed=7)
    with torch.no_grad():
        src.vae.mel_mean.normal_()  # persistent statistics travel with the checkpoint
    save_file(src.vae.state_dict(), tmp_path / "vae.safetensors")
    save_file(src.vocoder.state_dict(), tmp_path / "voc.safetensors")
    loaded = AudioCodec.load(
        cfg, vae=tmp_path / "vae.safetensors", vocoder=str(tmp_path / "voc.safetensors"), seed=8
    )
    assert not loaded.random_weights and loaded.provenance["vae"] == str(tmp_path / "vae.safetensors")
    z = torch.randn(1, 3, cfg.vae.latent_channels)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode_to_wave(z), src.decode_to_wave(z), rtol=0, atol=0)


def test_strict_loading_lists_every_problem(tmp_path) -> None:
    cfg = codec_config("16k", tiny=True)
    state = dict(AudioCodec(cfg).vocoder.state_dict())
    del state["conv_pre.bias"], state["conv_post.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["conv_pre.weight"] = torch.zeros(3, 3, 3)
    with pytest.raises(WeightsError) as err:
        AudioCodec.load(cfg, vae=None, vocoder=state)
    msg = str(err.value)
    assert "16k vocoder" in msg and "missing keys (2): conv_post.weight, conv_pre.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg and "conv_pre.weight: checkpoint (3, 3, 3)" in msg


def test_checkpoint_files_are_safetensors_only(tmp_path) -> None:
    cfg = codec_config("16k", tiny=True)
    with pytest.raises(WeightsError, match="no such checkpoint file"):
        AudioCodec.load(cfg, vae="agomni-vae-16k", vocoder=None)
    pickled = tmp_path / "vae.pt"
    torch.save(AudioCodec(cfg).vae.state_dict(), pickled)
    with pytest.raises(WeightsError, match=r"only \.safetensors"):
        AudioCodec.load(cfg, vae=pickled, vocoder=None)
    corrupt = tmp_path / "vae.safetensors"
    corrupt.write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        AudioCodec.load(cfg, vae=corrupt, vocoder=None)


def test_posterior_kl_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(2, 3, 4, generator=g), torch.rand(2, 3, 4, generator=g) + 0.1
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std), torch.distributions.Normal(0, 1)
    )
    torch.testing.assert_close(DiagonalGaussian(mean, std).kl_to_standard_normal(), ref)


def test_snakebeta_formula() -> None:
    act = SnakeBeta(1)
    with torch.no_grad():
        act.log_alpha.fill_(math.log(2.0))
        act.log_beta.fill_(math.log(0.5))
    x = torch.tensor([[[0.0, 0.3, -1.2]]])
    expected = [v + math.sin(2.0 * v) ** 2 / 0.5 for v in (0.0, 0.3, -1.2)]
    torch.testing.assert_close(act(x)[0, 0], torch.tensor(expected))

"""agomni.io.load_audio / resample / downmix against numpy, soundfile, torchaudio and analytic signals."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from agomni.errors import (
    EmptyMediaError,
    NonFiniteAudioError,
    SilentAudioError,
    TooShortError,
    UnreadableMediaError,
    UnsupportedCodecError,
    UsageError,
)
from agomni.io import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, load_audio, resample
from tests.media_fixtures import (
    AUDIO_CODECS,
    make_text_file,
    make_tone_file,
    make_truncated_copy,
    make_video_file,
    sine,
    write_pcm_file,
)

RNG = np.random.default_rng(20260126)


def dominant_frequency_hz(x: np.ndarray, rate: int) -> float:
    """Peak of the Hann-windowed magnitude spectrum, refined by parabolic interpolation (numpy only)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * rate / len(x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --- exact PCM round trips ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_pcm16_is_sample_exact(tmp_path, suffix):
    written = RNG.integers(-32768, 32768, size=(2, 4000), dtype=np.int16)
    path = write_pcm_file(tmp_path / f"stereo{suffix}", written, 22050, "PCM_16")
    audio, record = load_audio(path, downmix="keep")
    assert audio.dtype == torch.float32 and tuple(audio.shape) == (2, 4000)
    np.testing.assert_array_equal(audio.numpy(), written.astype(np.float32) / np.float32(32768))
    assert (record.source_sample_rate, record.source_channels, record.source_samples) == (22050, 2, 4000)
    assert record.sample_rate == 22050 and not record.resample_applied
    assert record.decoder.startswith("soundfile") and record.codec == "PCM_16"
    assert record.container == suffix[1:]
    assert record.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.file_bytes == path.stat().st_size


def test_flac24_and_float_wav_are_sample_exact(tmp_path):
    top24 = RNG.integers(-(2**23), 2**23, size=(1, 3000)).astype(np.int32) * 256
    audio, _ = load_audio(write_pcm_file(tmp_path / "a.flac", top24, 16000, "PCM_24"), downmix="keep")
    np.testing.assert_array_equal(audio.numpy(), (top24 / 2.0**31).astype(np.float32))
    floats = RNG.uniform(-1.5, 1.5, size=(1, 3000)).astype(np.float32)
    audio, record = load_audio(write_pcm_file(tmp_path / "f.wav", floats, 16000, "FLOAT"), downmix="keep")
    np.testing.assert_array_equal(audio.numpy(), floats)
    assert record.peak_abs == pytest.approx(float(np.abs(floats).max()))


# --- lossy codecs: frequency and level preserved --------------------------------------------

LOSSY = ["mp3", "vorbis", "vorbis-oga", "opus", "aac"]


@pytest.mark.parametrize("codec", LOSSY)
def test_lossy_codec_keeps_frequency_and_rms(tmp_path, codec):
    tone = make_tone_file(tmp_path / "tone", codec, sample_rate=48000, frequencies=1000.0, duration=1.0)
    audio, record = load_audio(tone.path)
    assert record.decoder.startswith("pyav") and record.sample_rate == 48000
    x = audio[0].numpy()
    # lossy decoders may add up to a codec frame (<= ~50 ms here) or trim a little; never more
    assert abs(len(x) / 48000 - 1.0) < 0.05
    core = x[4800:-4800]  # skip 100 ms at each end (encoder priming/padding transients)
    # 1000 Hz tone: parabolic FFT peak within 1 Hz. RMS of a 0.5-amplitude sine is 0.5/sqrt(2); within
    # 10 %: LAME at its default 64 kb/s attenuates this tone to 0.95x (the same level libsndfile's
    # independent mpg123 decoder reports, checked below), the other codecs stay within 1 %.
    assert dominant_frequency_hz(core, 48000) == pytest.approx(1000.0, abs=1.0)
    assert rms(core) == pytest.approx(0.5 / math.sqrt(2), rel=0.10)
    if codec != "aac":  # libsndfile decodes mp3 (mpg123), vorbis (libvorbis), opus (libopus), not aac
        other, other_rate = sf.read(str(tone.path), dtype="float64")
        assert other_rate == 48000
        assert rms(core) == pytest.approx(rms(other[4800:-4800]), rel=1e-3)
    json.dumps(record.to_dict())
    assert "not truncated" in record.integrity_check


@pytest.mark.parametrize("suffix", VIDEO_EXTENSIONS)
def test_audio_track_of_video_containers(tmp_path, suffix):
    signal = sine(440.0, 48000, 1.0)
    path = make_video_file(tmp_path / f"clip{suffix}", [(200, 30, 30)] * 10, fps=10, audio=signal)
    audio, record = load_audio(path, sample_rate=16000)
    assert record.codec in ("aac", "opus") and record.stream_index == 1
    x = audio[0].numpy()
    assert record.sample_rate == 16000 and abs(len(x) / 16000 - 1.0) < 0.05
    core = x[1600:-1600]
    assert dominant_frequency_hz(core, 16000) == pytest.approx(440.0, abs=1.0)
    assert rms(core) == pytest.approx(0.5 / math.sqrt(2), rel=0.05)


def test_extension_tuples_cover_tested_formats():
    assert set(AUDIO_EXTENSIONS) == {suffix for _, suffix in AUDIO_CODECS.values()}
    assert VIDEO_EXTENSIONS == (".mp4", ".mkv", ".webm")


# --- downmix policies -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mean", "first", "keep"])
def test_downmix_policies_match_numpy(tmp_path, policy):
    written = RNG.integers(-20000, 20000, size=(2, 2000), dtype=np.int16)
    path = write_pcm_file(tmp_path / "stereo.wav", written, 16000, "PCM_16")
    audio, record = load_audio(path, downmix=policy)
    channels = written.astype(np.float32) / np.float32(32768)
    expected = {"mean": channels.mean(axis=0, keepdims=True), "first": channels[:1], "keep": channels}[policy]
    np.testing.assert_array_equal(audio.numpy(), expected)
    assert record.downmix == policy and record.channels == expected.shape[0] and record.source_channels == 2


# --- resampling -----------------------------------------------------------------------------


def test_torchaudio_sinc_is_bit_equal_to_av_benchmark_call(tmp_path):
    written = np.round(sine([440.0, 3000.0], 44100, 0.5) * 32767).astype(np.int16)
    path = write_pcm_file(tmp_path / "a.wav", written, 44100, "PCM_16")
    audio, record = load_audio(path, sample_rate=16000, downmix="mean")
    # av-benchmark AudioDataset.read_from_file: mean over channels, then transforms.Resample(sr, 16000)
    mono = torch.from_numpy(written.astype(np.float32) / np.float32(32768)).mean(dim=0)
    expected = torchaudio.transforms.Resample(44100, 16000)(mono)
    assert torch.equal(audio[0], expected)
    params = dict(record.resample_params)
    assert params["lowpass_filter_width"] == 6 and params["rolloff"] == 0.99
    assert params["resampling_method"] == "sinc_interp_hann" and params["beta"] is None
    assert record.resample_applied and record.samples == expected.shape[-1]


def test_torchaudio_sinc_functional_is_bit_equal_to_functional_call():
    x = torch.from_numpy(RNG.standard_normal((2, 4410)).astype(np.float32))
    expected = torchaudio.functional.resample(
        x, 44100, 16000, lowpass_filter_width=6, rolloff=0.99, resampling_method="sinc_interp_hann", beta=None
    )
    assert torch.equal(resample(x, 44100, 16000, "torchaudio-sinc-functional"), expected)


# Interior (500 output samples from each edge) max error against the analytic sine at the new rate.
# torchaudio: Hann-windowed sinc with 6 zero crossings; measured <= 2.2e-4 on these pairs -> 5e-4.
# soxr: HQ is 20-bit (2**-20 ~ 1e-6 of full scale), VHQ 28-bit; measured <= 8e-6 -> 2e-5.
RESAMPLE_TOLERANCE = {
    "torchaudio-sinc": 5e-4,
    "torchaudio-sinc-functional": 5e-4,
    "soxr-hq": 2e-5,
    "soxr-vhq": 2e-5,
}


@pytest.mark.parametrize("policy", list(RESAMPLE_TOLERANCE))
@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (16000, 48000), (48000, 32000)])
def test_resample_matches_analytic_sine(policy, orig, new):
    x = torch.from_numpy(sine(440.0, orig, 1.0))
    y = resample(x, orig, new, policy)
    assert y.dtype == torch.float32 and y.shape[-1] == new  # 1 s in, 1 s out
    reference = sine(440.0, new, 1.0)[0]
    error = np.abs(y[0].double().numpy() - reference)[500:-500].max()
    assert error < RESAMPLE_TOLERANCE[policy]


def test_soxr_policy_is_recorded(tmp_path):
    tone = make_tone_file(tmp_path / "t", "pcm_f32", sample_rate=44100, duration=0.5)
    audio, record = load_audio(tone.path, sample_rate=16000, resampler="soxr-vhq")
    params = dict(record.resample_params)
    assert params["quality"] == "VHQ" and params["compute_dtype"] == "float64"
    assert record.to_dict()["resample_params"]["quality"] == "VHQ"
    assert audio.shape[-1] == 8000


def test_bad_policies_are_usage_errors(tmp_path):
    tone = make_tone_file(tmp_path / "t", "pcm_s16", sample_rate=16000, duration=0.1)
    with pytest.raises(UsageError, match="resampling policy"):
        load_audio(tone.path, sample_rate=8000, resampler="linear")
    with pytest.raises(UsageError, match="downmix policy"):
        load_audio(tone.path, downmix="sum")
    with pytest.raises(UsageError, match="positive integer"):
        resample(torch.zeros(1, 10), 16000, 0, "soxr-hq")


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("sample_rate", [16000, 44100])
@pytest.mark.parametrize("xing", ["1", "0"])  # with and without a Xing/Info header
def test_truncated_mp3_raises(tmp_path, fraction, sample_rate, xing):
    tone = make_tone_file(
        tmp_path / "full", "mp3", sample_rate=sample_rate, duration=2.0, muxer_options={"write_xing": xing}
    )
    _, record = load_audio(tone.path)  # the whole file is fine
    assert ("Xing/Info header declares" in record.integrity_check) == (xing == "1")
    cut = make_truncated_copy(tone.path, tmp_path / "cut.mp3", fraction)
    with pytest.raises(UnreadableMediaError, match="truncated") as info:
        load_audio(cut)
    assert str(cut) in str(info.value)


def test_mp3_written_by_libsndfile_loads_and_truncation_raises(tmp_path):
    path = tmp_path / "lame.mp3"
    sf.write(str(path), sine(440.0, 44100, 1.0)[0], 44100, format="MP3")
    audio, record = load_audio(path)
    assert record.decoder.startswith("pyav") and audio.shape[-1] == 44100
    with pytest.raises(UnreadableMediaError, match="truncated"):
        load_audio(make_truncated_copy(path, tmp_path / "cut.mp3", 0.7))


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_truncated_faststart_m4a_raises(tmp_path, fraction):
    tone = make_tone_file(tmp_path / "full", "aac", duration=2.0, muxer_options={"movflags": "faststart"})
    cut = make_truncated_copy(tone.path, tmp_path / "cut.m4a", fraction)
    with pytest.raises(UnreadableMediaError) as info:
        load_audio(cut)
    assert str(cut) in str(info.value)


@pytest.mark.parametrize("codec", ["pcm_s16", "flac", "vorbis", "opus", "aac"])
@pytest.mark.parametrize("fraction", [0.5, 0.95, 0.999])
def test_other_truncated_files_raise(tmp_path, codec, fraction):
    tone = make_tone_file(tmp_path / "full", codec, sample_rate=48000, duration=2.0)
    cut = make_truncated_copy(tone.path, tmp_path / f"cut{tone.path.suffix}", fraction)
    with pytest.raises(UnreadableMediaError) as info:
        load_audio(cut)
    assert str(cut) in str(info.value)


VALID_CASES = [
    (codec, rate) for codec in ("mp3", "vorbis", "aac", "flac", "pcm_s16") for rate in (8000, 22050, 48000)
] + [("opus", 8000), ("opus", 24000), ("opus", 48000)]  # opus encodes only 8/12/16/24/48 kHz


@pytest.mark.parametrize(("codec", "sample_rate"), VALID_CASES)
@pytest.mark.parametrize("duration", [0.3, 2.7])
def test_valid_files_never_trip_the_truncation_checks(tmp_path, codec, sample_rate, duration):
    tone = make_tone_file(tmp_path / "ok", codec, sample_rate=sample_rate, duration=duration)
    audio, record = load_audio(tone.path)
    assert audio.shape[-1] > 0 and "not checked" not in record.integrity_check


def test_empty_file_and_stream_raise_empty(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMediaError, match="0 bytes") as info:
        load_audio(empty)
    assert str(empty) in str(info.value)
    no_samples = write_pcm_file(tmp_path / "nosamples.wav", np.zeros((1, 0), np.int16), 16000, "PCM_16")
    with pytest.raises(EmptyMediaError, match="no samples") as info:
        load_audio(no_samples)
    assert str(no_samples) in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_raise(tmp_path, bad):
    samples = np.full((1, 1000), 0.25, np.float32)
    samples[0, 123] = bad
    path = write_pcm_file(tmp_path / "bad.wav", samples, 16000, "FLOAT")
    with pytest.raises(NonFiniteAudioError, match="first at sample 123") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_nan_filled_wav_raises(tmp_path):
    path = write_pcm_file(tmp_path / "nan.wav", np.full((2, 500), np.nan, np.float32), 16000, "FLOAT")
    with pytest.raises(NonFiniteAudioError, match="1000 of 1000") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_all_zero_audio_raises_unless_allowed(tmp_path):
    path = write_pcm_file(tmp_path / "zero.wav", np.zeros((1, 1600), np.int16), 16000, "PCM_16")
    with pytest.raises(SilentAudioError, match="allow_silence") as info:
        load_audio(path)
    assert str(path) in str(info.value)
    audio, record = load_audio(path, allow_silence=True)
    assert not audio.any() and record.peak_abs == 0.0


def test_too_short_raises(tmp_path):
    tone = make_tone_file(tmp_path / "short", "pcm_s16", sample_rate=16000, duration=0.5)
    with pytest.raises(TooShortError, match=r"0\.500 s .* minimum 1\.000 s") as info:
        load_audio(tone.path, min_duration=1.0)
    assert str(tone.path) in str(info.value)
    _, record = load_audio(tone.path, min_duration=0.5)
    assert record.duration_s == pytest.approx(0.5)


def test_video_only_file_has_no_audio(tmp_path):
    path = make_video_file(tmp_path / "silent.mp4", [(0, 0, 255)] * 5, fps=10)
    with pytest.raises(UnsupportedCodecError, match="no audio stream") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_text_renamed_wav_and_missing_path_are_unreadable(tmp_path):
    text = make_text_file(tmp_path / "notes.wav")
    with pytest.raises(UnreadableMediaError) as info:
        load_audio(text)
    assert str(text) in str(info.value)
    with pytest.raises(UnreadableMediaError, match="not a regular file"):
        load_audio(tmp_path)
    missing = tmp_path / "nowhere.flac"
    with pytest.raises(UnreadableMediaError, match="does not exist") as info:
        load_audio(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(("subtype", "rate"), [("VORBIS", 44100), ("VORBIS", 16000), ("OPUS", 48000)])
@pytest.mark.parametrize("samples", [1000, 16000, 22050, 44137, 100003])
def test_ogg_decodes_to_the_length_its_granule_position_declares(tmp_path, subtype, rate, samples):
    """Real Ogg files written by libvorbis / libopus (through soundfile): the decode has exactly the
    length the final granule position declares, and the same samples libsndfile gives (FFmpeg's own
    Vorbis end trimming is one short block off: 128 samples short at 16000, 24 too many at 1000)."""
    rng = np.random.default_rng(samples)
    x = (0.3 * np.sin(np.arange(samples) * 0.05) + 0.05 * rng.standard_normal(samples)).astype(np.float32)
    path = tmp_path / f"clip_{samples}.ogg"
    sf.write(path, x, rate, format="OGG", subtype=subtype)
    expected, _ = sf.read(path, dtype="float32")
    assert expected.shape == (samples,)
    audio, record = load_audio(path, sample_rate=None, downmix="keep")
    assert audio.shape == (1, samples) and record.samples == samples
    np.testing.assert_allclose(audio[0].numpy(), expected, rtol=0, atol=1e-6)

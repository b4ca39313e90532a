"""Generator outputs are checked, not trusted: scaling of integer PCM, channel layout, sample rate,
sys.exit in user code, over-long outputs, folder: extensions; nonsense options and generator names are
usage errors before any work."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from agomni.manifest import Item
from agomni.results import read_results
from agomni.run import GenSettings, RunRequest, run_suite
from agomni.run.generators import Replicate, parse_generator
from tests.run.toy_fixtures import no_video_manifest

RNG = np.random.default_rng(7)
NOISE = RNG.normal(0, 0.2, (2, 32000))  # [channels, samples], 2 s at 16 kHz
PCM16 = np.clip(NOISE * 32768, -32768, 32767).astype(np.int16)
PCM32 = (NOISE * 2**31).astype(np.int32)


@pytest.fixture(scope="module")
def no_video(tmp_path_factory):
    return no_video_manifest(tmp_path_factory.mktemp("toy"))


# python: generators (module:function), one item in, (waveform, rate) out.
def pcm16(item):
    return PCM16[0], 16000


def pcm16_as_float(item):
    """What soundfile reads from an int16 PCM file of the same samples: the independent scaling."""
    return PCM16[0] / 32768.0, 16000


def samples_channels(item):
    return NOISE.T, 16000


def run_python(tmp_path: Path, function, item: Item) -> list:
    gen = parse_generator(f"python:tests.run.test_generator_outputs:{function}", GenSettings(progress=False))
    rep = Replicate(0, 0, tmp_path / function)
    return gen.produce([item], [rep], lambda _: None)[rep.name]


ITEM = Item(id="t2a-x", task="t2a", line=1, text="rain", duration=2.0)


@pytest.mark.parametrize(("returned", "subtype"), [(PCM16, "PCM_16"), (PCM32, "PCM_32")])
def test_integer_samples_are_scaled_as_soundfile_reads_pcm(tmp_path, monkeypatch, returned, subtype):
    monkeypatch.setattr(sys.modules[__name__], "pcm16", lambda item: (returned, 16000))
    assert run_python(tmp_path, "pcm16", ITEM) == []
    written, rate = sf.read(tmp_path / "pcm16" / "t2a-x.wav", dtype="float64", always_2d=True)
    reference = tmp_path / f"reference-{subtype}.wav"
    sf.write(reference, returned.T, 16000, subtype=subtype)
    expected, _ = sf.read(reference, dtype="float64", always_2d=True)
    assert rate == 16000 and written.shape == (32000, 2)
    np.testing.assert_allclose(written, expected, rtol=0, atol=2**-24)  # float32 rounding of the scaled value


@pytest.mark.slow  # two smoke runs of 6 items with FD (about 20 s on 2 cores)
def test_int16_generator_scores_as_its_float_equivalent(tmp_path, no_video):
    base = ["run", "smoke", "--manifest", str(no_video), "--no-progress", "--format", "json"]
    base += ["--metrics", "fd_offline"]
    for name in ("pcm16", "pcm16_as_float"):
        generator = f"python:tests.run.test_generator_outputs:{name}"
        assert main([*base, "--generator", generator, "--out", str(tmp_path / name)]) == 0
    (a,) = read_results(tmp_path / "pcm16" / "results.json").metrics
    (b,) = read_results(tmp_path / "pcm16_as_float" / "results.json").metrics
    assert a.value == pytest.approx(b.value, rel=1e-6)


def test_samples_channels_array_is_transposed(tmp_path):
    assert run_python(tmp_path, "samples_channels", ITEM) == []
    written, _ = sf.read(tmp_path / "samples_channels" / "t2a-x.wav", dtype="float64", always_2d=True)
    np.testing.assert_array_equal(written, NOISE.T.astype(np.float32))


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ((np.zeros((4, 4)), 16000), r"cannot tell channels from samples in an array of shape \(4, 4\)"),
        ((np.zeros((2, 3, 100)), 16000), r"shape \(2, 3, 100\)"),
        ((np.zeros(32000), 16000.7), "16000.7 Hz is not a whole number of Hz"),
        ((np.zeros(32000), "16000"), "'16000' is not a number of Hz"),
        ((np.zeros(32000, dtype=np.int64), 16000), "integer samples of type int64"),
        ((np.zeros(16000 * 600, dtype=np.float32), 16000), r"600.0 s for an item of 2 s \(at most 14 s"),
        ((np.zeros(0), 16000), "empty waveform"),
    ],
)
def test_unusable_outputs_are_item_failures_with_the_reason(tmp_path, monkeypatch, output, reason):
    monkeypatch.setattr(sys.modules[__name__], "pcm16", lambda item: output)
    (failure,) = run_python(tmp_path, "pcm16", ITEM)
    assert failure.id == "t2a-x"
    assert "output refused" in failure.reason
    assert re.search(reason, failure.reason), failure.reason
    assert not (tmp_path / "pcm16" / "t2a-x.wav").exists()


def test_whole_float_rate_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "pcm16", lambda item: (NOISE[0], 16000.0))
    assert run_python(tmp_path, "pcm16", ITEM) == []


def test_sys_exit_in_a_generator_is_that_items_failure_and_ctrl_c_still_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "pcm16", lambda item: sys.exit(3))
    (failure,) = run_python(tmp_path, "pcm16", ITEM)
    assert failure.reason.endswith("called sys.exit(3)")

    def interrupted(item):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules[__name__], "pcm16", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_python(tmp_path, "pcm16", ITEM)


def test_folder_generator_reads_oga_and_names_files_it_cannot_read(tmp_path, no_video):
    ids = [json.loads(line)["id"] for line in no_video.read_text().splitlines()]
    files = tmp_path / "files"
    files.mkdir()
    for i, item_id in enumerate(ids[:-1]):
        wave = np.random.default_rng(i).normal(0, 0.1, 32000)
        fmt = {"format": "OGG", "subtype": "VORBIS"} if i % 2 else {}
        sf.write(files / f"{item_id}.{'oga' if i % 2 else 'wav'}", wave, 16000, **fmt)
    (files / f"{ids[-1]}.xyz").write_bytes(b"not audio")
    request = RunRequest(
        suite="smoke",
        out=tmp_path / "run",
        generator=f"folder:{files}",
        manifest=no_video,
        metrics=("fd_offline",),
        settings=GenSettings(progress=False),
    )
    results = read_results(run_suite(request))
    coverage = {c.id: c for c in results.coverage}
    assert [coverage[i].status for i in ids[:-1]] == ["ok"] * (len(ids) - 1)
    assert coverage[ids[-1]].status == "error"
    assert f"{ids[-1]}.xyz: not an audio extension this version reads" in coverage[ids[-1]].reason
    assert ".oga" in coverage[ids[-1]].reason and "convert" in coverage[ids[-1]].reason


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--timeout", "0"], "--timeout 0.0"),
        (["--timeout", "nan"], "--timeout nan"),
        (["--sample-rate", "0"], "--sample-rate 0"),
        (["--steps", "-1"], "--steps -1"),
        (["--num-samples", "0"], "--num-samples 0"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--cfg", "inf"], "--cfg inf"),
        (["--format", "pdf"], "--format 'pdf': choose one or more of md, html, csv, csv-wide, tex, json"),
        (["--format", ","], "--format ','"),
        (["--generator", "..=folder:/tmp"], "the name '..' is not a plain folder name"),
        (["--generator", "a/b=folder:/tmp"], "the name 'a/b' is not a plain folder name"),
        (["--generator", ".hidden=folder:/tmp"], "the name '.hidden' is not a plain folder name"),
    ],
)
def test_nonsense_options_are_usage_errors_before_any_work(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    assert main(["run", "smoke", "--out", str(out), "--no-progress", *options]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()

"""A resumed run reuses only files it would have made itself: same generator spec and settings, seed,
sample and file hash; anything else is an error naming the mismatch, or regenerated with --overwrite."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from tests.run.toy_fixtures import no_video_manifest


@pytest.fixture(scope="module")
def no_video(tmp_path_factory):
    return no_video_manifest(tmp_path_factory.mktemp("toy"))


def tone(item):
    """A tone whose pitch depends on the item id."""
    t = np.arange(32000) / 16000
    return 0.3 * np.sin(2 * np.pi * (200 + 30 * len(item.id)) * t), 16000


def noise(item):
    return np.random.default_rng(len(item.id)).normal(0, 0.1, 32000), 16000


def run(out, manifest, generator, *extra):
    argv = ["run", "smoke", "--manifest", str(manifest), "--out", str(out), "--no-progress"]
    argv += ["--format", "json", "--metrics", "fd_offline", "--generator", generator, *extra]
    return main(argv)


TONE = "python:tests.run.test_resume_checks:tone"
NOISE = "python:tests.run.test_resume_checks:noise"


def test_second_generator_into_the_same_out_is_refused_then_overwritten(tmp_path, no_video, capsys):
    out = tmp_path / "run"
    folder = out / "seed-0" / "sample-0"
    assert run(out, no_video, TONE) == 0
    first = {p.name: sf.read(p)[0] for p in folder.glob("*.wav")}
    assert len(first) == 6
    capsys.readouterr()
    assert run(out, no_video, TONE) == 0  # the same command again: everything reused
    assert "6 of 6 items already done (not recomputed), 0 to generate" in capsys.readouterr().err

    assert run(out, no_video, NOISE) == 2
    err = capsys.readouterr().err
    assert "6 generated file(s) were not made by this run's generator" in err
    assert f"made by generator '{TONE}', this run's is '{NOISE}'" in err and "--overwrite" in err
    for name, samples in first.items():  # nothing touched, and run.json still describes the first run
        np.testing.assert_array_equal(sf.read(folder / name)[0], samples)
    assert json.loads((out / "run.json").read_text())["generator"]["spec"] == TONE

    assert run(out, no_video, NOISE, "--overwrite") == 0
    assert "--overwrite: regenerating 6 file(s)" in capsys.readouterr().err
    for name, samples in first.items():
        assert not np.array_equal(sf.read(folder / name)[0], samples)
        sidecar = json.loads((folder / name).with_suffix(".json").read_text())
        assert sidecar["generator"]["spec"] == NOISE


def test_other_settings_and_a_hand_replaced_or_placed_file_are_refused(tmp_path, no_video, capsys):
    out = tmp_path / "run"
    folder = out / "seed-0" / "sample-0"
    assert run(out, no_video, TONE) == 0
    replaced = sorted(folder.glob("*.wav"))[0]
    sf.write(replaced, np.zeros(32000), 16000, subtype="FLOAT")
    capsys.readouterr()
    assert run(out, no_video, TONE) == 2
    err = capsys.readouterr().err
    assert "1 generated file(s) were not made by this run's generator" in err
    assert f"{replaced.name}: changed after it was generated" in err

    assert run(out, no_video, TONE, "--overwrite") == 0
    assert "5 of 6 items already done (not recomputed), 1 to generate" in capsys.readouterr().err
    expected = tone(SimpleNamespace(id=replaced.stem))[0].astype(np.float32)
    np.testing.assert_array_equal(sf.read(replaced, dtype="float32")[0], expected)

    without = sorted(folder.glob("*.wav"))[1]
    without.with_suffix(".json").unlink()
    assert run(out, no_video, TONE) == 2
    assert (
        f"{without.name}: it has no sidecar {without.stem}.json (put there by hand" in capsys.readouterr().err
    )

    assert run(out, no_video, TONE, "--sample-rate", "8000") == 2
    assert "other settings (sample_rate 16000 -> 8000)" in capsys.readouterr().err

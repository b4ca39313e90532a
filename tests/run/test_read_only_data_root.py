"""Every importer on a data root the process cannot write (a read-only bind mount when run as root, where
file modes do not stop writes; read-only file modes otherwise): the manifest goes into the run folder,
its media resolve against the data root, `..` and symlinks leading out of the data root are refused."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.errors import ManifestError
from agomni.manifest import load_manifest
from agomni.run.items import resolve_items, toy_items
from agomni.toycorpus import build_corpus

ROOT = Path(__file__).resolve().parents[2]
# suite -> (its importer's folder in the data roots built below, item ids the importer finds there)
SUITES = {
    "tts-seed-en": ("seed/en", ["u1"]),
    "tts-librispeech-pc": ("libri", ["1089-134686-0001"]),
    "v2a-vggsound": ("vgg", ["---g-f_I2yQ_000001"]),
    "t2a-audiocaps": ("audiocaps", ["7fmOlUlwoNg_20"]),
}
PROBE = """
import json, sys
from pathlib import Path
from agomni.run.items import resolve_items
data, out, suites = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
try:
    (data / "probe.txt").write_text("x")
    sys.exit("the data root is writable: the test would prove nothing")
except OSError:
    pass
found = {}
for suite, folder in suites.items():
    manifest, coverage = resolve_items(suite, 1, data / folder, out / suite)
    found[suite] = [str(manifest.path), [[str(i.reference_audio), str(i.prompt_audio)] for i in manifest]]
print(json.dumps(found))
"""


def _wav(path, seconds=0.5, freq=440.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)


def build_data_roots(data: Path) -> None:
    """One small folder per importer, in the anchors' layouts, plus a prebuilt toy corpus."""
    seed = data / "seed/en"
    _wav(seed / "prompt-wavs/p1.wav")
    _wav(seed / "wavs/u1.wav")
    (seed / "meta.lst").write_text("u1|Prompt one.|prompt-wavs/p1.wav|Say this first.\n")
    libri = data / "libri"
    libri.mkdir()
    (libri / "librispeech_pc_test_clean_cross_sentence.lst").write_text(
        "1089-134686-0000\t5.2\tRef text.\t1089-134686-0001\t6.5\tGen text.\n"
    )
    _wav(libri / "LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac")
    _wav(libri / "LibriSpeech/test-clean/1089/134686/1089-134686-0001.flac")
    vgg = data / "vgg"
    vgg.mkdir()
    (vgg / "vggsound.csv").write_text("---g-f_I2yQ,1,people marching,test\n")
    (vgg / "video").mkdir()
    (vgg / "video/---g-f_I2yQ_000001.mp4").write_bytes(b"\0" * 64)  # the importer checks presence only
    caps = data / "audiocaps"
    caps.mkdir()
    (caps / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,7fmOlUlwoNg,20,A rattle\n")
    _wav(caps / "audio/7fmOlUlwoNg_20.wav")
    build_corpus(data / "smoke/toy", n_train=1, n_heldout=2)


def _read_only(data: Path, command: list[str]) -> list[str]:
    """`command` run where `data` cannot be written (module docstring); skips where neither works."""
    if os.geteuid() != 0:
        return command  # the caller made the files read-only
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: no way to make the data root read-only")
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(data), "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("running as root where a read-only bind mount is not permitted")
    return ["unshare", "--mount", "sh", "-c", script, "sh", str(data), *command]


@pytest.fixture
def data_root(tmp_path):
    data = tmp_path / "data"
    build_data_roots(data)
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    if os.geteuid() != 0:
        for path in [*data.rglob("*"), data]:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield data
    if os.geteuid() != 0:
        for path in [data, *data.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before  # nothing written


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow  # a subprocess per command and a small `agomni run`: about 20 s on a busy machine
def test_every_importer_and_a_run_work_on_a_read_only_data_root(data_root, tmp_path):
    out = tmp_path / "runs"
    suites = {suite: folder for suite, (folder, _) in SUITES.items()} | {"smoke": "smoke"}
    command = _read_only(
        data_root, [sys.executable, "-c", PROBE, str(data_root), str(out), json.dumps(suites)]
    )
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    for suite, (folder, ids) in SUITES.items():
        manifest, files = found[suite]
        assert Path(manifest).parent == out / suite  # the manifest is in the run folder
        entries = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
        assert [e["id"] for e in entries] == ids
        assert {e["data_root"] for e in entries} == {str(data_root / folder)}
        for reference, prompt in files:  # media resolve inside the data root
            for path in (reference, prompt):
                assert path == "None" or Path(path).is_relative_to(data_root / folder), path
    assert Path(found["smoke"][0]) == data_root / "smoke/toy/heldout/manifest.jsonl"  # read where it is

    # a whole `agomni run` through the toy-corpus importer, one generated file per item
    toy = data_root / "smoke/toy/heldout/manifest.jsonl"
    gen = tmp_path / "gen"
    for number, line in enumerate(toy.read_text().splitlines()):
        _wav(gen / f"{json.loads(line)['id']}.wav", seconds=2.0, freq=200.0 + 40 * number)
    argv = ["run", "smoke", "--data-root", str(data_root / "smoke"), "--generator", f"folder:{gen}"]
    argv += ["--out", str(tmp_path / "run"), "--no-progress", "--format", "md"]
    run = subprocess.run(
        _read_only(data_root, [sys.executable, "-m", "agomni.cli", *argv]),
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "run/results.json").read_text())["metrics"]


def test_media_paths_may_not_leave_the_data_root(tmp_path):
    data = tmp_path / "data"
    _wav(tmp_path / "outside.wav")
    _wav(data / "wavs/u1.wav")
    (data / "prompt-wavs").mkdir()
    (data / "prompt-wavs/link.wav").symlink_to(tmp_path / "outside.wav")
    (data / "meta.lst").write_text(
        "u1|Prompt.|../outside.wav|Say it.\nu2|Prompt.|prompt-wavs/link.wav|Say it.\n"
    )
    with pytest.raises(ManifestError) as caught:
        resolve_items("tts-seed-en", 1088, data, tmp_path / "run")
    problems = "\n".join(caught.value.problems)
    assert "id 'u1': prompt_audio: path leads outside the item's data_root: ../outside.wav" in problems
    assert "id 'u2': prompt_audio: path resolves outside the item's data_root through a symlink" in problems
    assert not (data / "agomni-seed-tts-eval.jsonl").exists()


def test_toy_subset_manifest_goes_into_the_run_folder(tmp_path):
    build_corpus(tmp_path / "toy", n_train=1, n_heldout=2)
    heldout = tmp_path / "toy/heldout"
    manifest, coverage = toy_items(
        tmp_path / "toy", {"split": "heldout", "items_per_task": 1}, 72, tmp_path / "run"
    )
    assert manifest.path.parent == tmp_path / "run" and coverage.found == len(manifest) == 6
    full = {item.id: item for item in load_manifest(heldout / "manifest.jsonl")}
    for item in manifest:
        assert item.data_root == heldout.resolve()
        assert (item.reference_audio, item.video) == (full[item.id].reference_audio, full[item.id].video)

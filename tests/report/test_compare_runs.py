"""`agomni run` with two folder: generators whose audio equals the reference audio, the first as FLAC
files (other files than the references: the cache entry of each clip lists both), the second as byte
copies of the WAV references with one item lost: the report's comparison plot and `agomni compare`."""

import json
import shutil

import pytest
import soundfile as sf

from agomni.cli import main
from tests.run.toy_fixtures import no_video_manifest


@pytest.fixture(scope="module")
def two_generators(tmp_path_factory):
    root = tmp_path_factory.mktemp("lost")
    manifest = no_video_manifest(root / "toy")
    items = [json.loads(line) for line in manifest.read_text().splitlines()]
    same, lost = root / "same", root / "lost"
    same.mkdir()
    lost.mkdir()
    for entry in items[1:]:
        shutil.copyfile(manifest.parent / entry["reference_audio"], lost / f"{entry['id']}.wav")
    for entry in items:  # other files, the same audio: FLAC of the 16-bit reference samples
        samples, rate = sf.read(manifest.parent / entry["reference_audio"], dtype="int16")
        sf.write(same / f"{entry['id']}.flac", samples, rate, subtype="PCM_16")
    out = root / "run"
    argv = ["run", "smoke", "--manifest", str(manifest), "--out", str(out), "--no-progress"]
    code = main(
        [*argv, "--generator", f"a=folder:{same}", "--generator", f"b=folder:{lost}", "--format", "md,html"]
    )
    return code, out, items[0]["id"]


# Two `agomni run`s and bootstrap FD/KAD on a shared 2-core machine: tens of seconds.
pytestmark = pytest.mark.slow


def test_report_of_two_generators_with_a_lost_item_is_written_with_its_plots(two_generators):
    code, out, lost_id = two_generators
    assert code == 0
    page = (out / "index.html").read_text()
    assert "difference with 95 % bootstrap interval" in page and "<svg" in page
    assert f"1 only in base: {lost_id}" in (out / "report.md").read_text()


def test_compare_of_run_folders_uses_the_shared_items_and_gates_the_lost_one(
    two_generators, tmp_path, capsys
):
    _, out, lost_id = two_generators
    runs = [str(out / "runs/a"), str(out / "runs/b")]
    report = tmp_path / "c.json"
    assert main(["compare", *runs, "--fail-on-regression", "--json", str(report), "--resamples", "100"]) == 1
    assert f"items scored in base only: 1 ({lost_id})" in capsys.readouterr().out
    for m in json.loads(report.read_text())["metrics"]:  # identical audio on the shared items
        assert m["base"] == m["new"] and m["delta"] == 0.0, m
        assert m["interval"]["low"] == m["interval"]["high"] == 0.0 and m["interval"]["n"] == 5
        assert m["lost"] == [lost_id]
    assert main(["compare", *runs, "--fail-on-regression", "--allow-lost-items", "--resamples", "100"]) == 0


def test_compare_without_the_cached_embeddings_says_so(two_generators, tmp_path, capsys):
    _, out, _ = two_generators
    copy = tmp_path / "copy"
    shutil.copytree(out.parent, copy)  # the run folders name their manifest by a relative path
    shutil.rmtree(copy / "run/runs/a/cache")
    runs = [str(copy / "run/runs/a"), str(out / "runs/a")]
    assert main(["compare", *runs, "--fail-on-regression", "--resamples", "100"]) == 0
    printed = capsys.readouterr().out
    assert "fd_offline" in printed and "no interval:" in printed and "no cached embedding of" in printed

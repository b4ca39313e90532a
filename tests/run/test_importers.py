"""Importers: a small fixture in each anchor's exact format -> the expected manifest; a malformed line
-> an error naming the line; listed items missing locally -> coverage entries."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from agomni.errors import ManifestError, UsageError
from agomni.run.importers import IMPORTERS, import_test_set
from agomni.run.items import suite_run_spec
from agomni.suites import get_suite


def _wav(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000)


def _lines(path):
    """The manifest's entries without `data_root` (checked apart: it is the absolute data root)."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(Path(e.pop("data_root")).is_absolute() for e in entries)
    return entries


def test_seed_tts_meta_lst(tmp_path):
    root = tmp_path / "en"
    (root).mkdir()
    (root / "meta.lst").write_text(
        "u1|Prompt one.|prompt-wavs/p1.wav|Say this first.\nu2|Prompt two.|prompt-wavs/p2.wav|Then this.\n"
    )
    _wav(root / "prompt-wavs/p1.wav")
    _wav(root / "wavs/u1.wav")
    manifest, coverage = import_test_set("seed-tts-eval", root, tmp_path / "run", 1088)
    assert _lines(manifest.path) == [
        {"id": "u1", "task": "tts", "transcript": "Say this first.", "language": "en",
         "prompt_audio": "prompt-wavs/p1.wav", "prompt_text": "Prompt one.", "reference_audio": "wavs/u1.wav"}
    ]  # fmt: skip
    assert (coverage.listed, coverage.found, coverage.published) == (2, 1, 1088)
    assert coverage.missing == (("u2", "not found locally: prompt audio prompt-wavs/p2.wav"),)
    # the five-field form names the ground truth itself
    (root / "meta.lst").write_text("u1|Prompt one.|prompt-wavs/p1.wav|Say it.|gt/u1.wav\n")
    _wav(root / "gt/u1.wav")
    manifest, _ = import_test_set("seed-tts-eval", root, tmp_path / "run", 1088)
    assert _lines(manifest.path)[0]["reference_audio"] == "gt/u1.wav"
    (root / "meta.lst").write_text("u1|Prompt one.|prompt-wavs/p1.wav|Say it.\nu3|only three|fields\n")
    with pytest.raises(ManifestError, match=r"line 2: expected utt\|prompt_text\|prompt_wav\|text"):
        import_test_set("seed-tts-eval", root, tmp_path / "run", 1088)


@pytest.mark.parametrize("folder", ["test-zh", "seedtts_testset", "zh"])
def test_seed_tts_language_comes_from_each_line_s_script_whatever_the_folder(tmp_path, folder):
    """A Chinese meta.lst is Chinese under any folder name; one Chinese line in an English list is Chinese;
    a line whose text has no letters takes its prompt text's script."""
    root = tmp_path / folder
    root.mkdir()
    (root / "meta.lst").write_text(
        "zh1|希望你以后能够做的比我还好呦。|p/zh1.wav|今天天气很好，我们去公园吧。\n"
        "en1|Prompt one.|p/en1.wav|Say this first, iPhone 15.\n"
        "mix|An English prompt.|p/mix.wav|他说 OK 就走了。\n"
        "nolet|我是提示。|p/nolet.wav|……！\n",
        encoding="utf-8",
    )
    for utt in ("zh1", "en1", "mix", "nolet"):
        _wav(root / f"p/{utt}.wav")
    manifest, _ = import_test_set("seed-tts-eval", root, tmp_path / "run", 2020)
    assert {e["id"]: e["language"] for e in _lines(manifest.path)} == {
        "zh1": "zh", "en1": "en", "mix": "zh", "nolet": "zh"
    }  # fmt: skip
    assert {i.id: i.language for i in manifest.items} == {
        "zh1": "zh",
        "en1": "en",
        "mix": "zh",
        "nolet": "zh",
    }


def test_seed_tts_empty_text_and_prompt_text_fields_are_kept_for_per_item_errors(tmp_path):
    """Four fields with an empty text (or prompt text) are the right count: the item is imported with an
    empty transcript (the speech metrics list it as unscorable); an empty utt or prompt_wav is refused."""
    (tmp_path / "meta.lst").write_text(
        "u1|Prompt.|p1.wav|\nu2||p1.wav|Say it.\nu3|Prompt.|p1.wav|...!?\n", encoding="utf-8"
    )
    _wav(tmp_path / "p1.wav")
    manifest, coverage = import_test_set("seed-tts-eval", tmp_path, tmp_path / "run", 1088)
    lines = {e["id"]: e for e in _lines(manifest.path)}
    assert lines["u1"]["transcript"] == "" and lines["u1"]["prompt_text"] == "Prompt."
    assert "prompt_text" not in lines["u2"] and lines["u2"]["transcript"] == "Say it."
    assert lines["u3"]["transcript"] == "...!?"
    assert [i.transcript for i in manifest.items] == ["", "Say it.", "...!?"] and coverage.found == 3
    (tmp_path / "meta.lst").write_text("u1|Prompt.||Say it.\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"line 1: expected utt.*the field\(s\) prompt_wav are empty"):
        import_test_set("seed-tts-eval", tmp_path, tmp_path / "run", 1088)


def test_f5_librispeech_pc_cross_sentence_list(tmp_path):
    lst = tmp_path / "librispeech_pc_test_clean_cross_sentence.lst"
    lst.write_text("1089-134686-0000\t5.2\tRef text.\t1089-134686-0001\t6.5\tGen text.\n")
    _wav(tmp_path / "LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac")
    manifest, coverage = import_test_set("f5-librispeech-pc", tmp_path, tmp_path / "run", 1127)
    assert _lines(manifest.path) == [
        {"id": "1089-134686-0001", "task": "tts", "transcript": "Gen text.", "language": "en", "duration": 6.5,
         "prompt_audio": "LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac", "prompt_text": "Ref text."}
    ]  # fmt: skip
    assert coverage.found == coverage.listed == 1
    lst.write_text("1089-134686-0000\t5.2\tRef text.\t1089-134686-0001\tsix\tGen text.\n")
    with pytest.raises(ManifestError, match=r"line 1: expected ref_utt"):
        import_test_set("f5-librispeech-pc", tmp_path, tmp_path / "run", 1127)


def test_vggsound_test_csv_keeps_test_rows(tmp_path):
    (tmp_path / "vggsound.csv").write_text(
        "---g-f_I2yQ,1,people marching,test\nabc,30,dog barking,train\nxyz,5,rain,test\n"
    )
    (tmp_path / "video").mkdir()
    shutil.copyfile(__file__, tmp_path / "video/---g-f_I2yQ_000001.mp4")  # the importer checks presence only
    manifest, coverage = import_test_set("vggsound-test", tmp_path, tmp_path / "run", 15446)
    assert _lines(manifest.path) == [
        {"id": "---g-f_I2yQ_000001", "task": "v2a", "video": "video/---g-f_I2yQ_000001.mp4",
         "reference_audio": "video/---g-f_I2yQ_000001.mp4", "duration": 8.0, "meta": {"label": "people marching"}}
    ]  # fmt: skip
    assert coverage.listed == 2 and coverage.missing == (
        ("xyz_000005", "not found locally: video video/xyz_000005.mp4"),
    )
    (tmp_path / "vggsound.csv").write_text("abc,notanumber,dog,test\n")
    with pytest.raises(ManifestError, match=r"line 1: expected youtube_id"):
        import_test_set("vggsound-test", tmp_path, tmp_path / "run", 15446)


def test_audiocaps_test_csv_one_item_per_clip(tmp_path):
    (tmp_path / "test.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n"
        "103549,7fmOlUlwoNg,20,Constant rattling noise\n"
        "103548,7fmOlUlwoNg,20,A rattling noise repeats\n"
        "1,absent01,0,A dog barks\n"
    )
    _wav(tmp_path / "audio/7fmOlUlwoNg_20.wav")
    manifest, coverage = import_test_set("audiocaps-test", tmp_path, tmp_path / "run", 975)
    assert _lines(manifest.path) == [
        {"id": "7fmOlUlwoNg_20", "task": "t2a", "text": "Constant rattling noise",
         "reference_audio": "audio/7fmOlUlwoNg_20.wav", "duration": 10.0,
         "meta": {"captions": ["Constant rattling noise", "A rattling noise repeats"]}}
    ]  # fmt: skip
    assert coverage.listed == 2 and coverage.missing == (
        ("absent01_0", "not found locally: audio audio/absent01_0.wav"),
    )
    (tmp_path / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,abc,zero,x\n")
    with pytest.raises(ManifestError, match=r"line 2: expected audiocap_id"):
        import_test_set("audiocaps-test", tmp_path, tmp_path / "run", 975)


def test_every_anchor_suite_names_an_importer_and_nothing_found_is_an_error(tmp_path):
    for suite in ("tts-seed-en", "tts-librispeech-pc", "v2a-vggsound", "t2a-audiocaps", "smoke"):
        assert suite_run_spec(suite).importer is not None
    (tmp_path / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,abc,0,x\n")
    with pytest.raises(UsageError, match="none of the 1 listed items were found locally"):
        import_test_set("audiocaps-test", tmp_path, tmp_path / "run", 975)


# suite -> the list file its importer reads and the media each layout's example line needs
LAYOUT_EXAMPLES = {
    "tts-seed-en": ("meta.lst", ["prompt-wavs/utt_0001.wav"]),
    "tts-librispeech-pc": (
        "librispeech_pc_test_clean_cross_sentence.lst",
        ["LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac"],
    ),
    "v2a-vggsound": ("vggsound.csv", []),  # the video is named after "->" in the example
    "t2a-audiocaps": ("test.csv", []),
}


@pytest.mark.parametrize("suite", sorted(LAYOUT_EXAMPLES))
def test_agomni_suites_prints_the_layout_whose_example_imports(suite, tmp_path, capsys):
    """`agomni suites SUITE` prints the importer's layout and the published count; the example line it
    shows, written into a data root as the layout says, is imported."""
    assert main(["suites", suite]) == 0
    out = capsys.readouterr().out
    published = get_suite(suite).test_set_size
    assert f"the published test set has {published} items" in out
    importer = suite_run_spec(suite).importer
    assert all(line in out for line in IMPORTERS[importer].layout.splitlines())
    listed, media = LAYOUT_EXAMPLES[suite]
    example = out.split("example ")[1].splitlines()[1].strip().replace("<TAB>", "\t")
    line, _, medium = (part.strip() for part in example.partition("->"))
    header = "audiocap_id,youtube_id,start_time,caption\n" if listed == "test.csv" else ""
    (tmp_path / listed).write_text(header + line + "\n")
    for path in [*media, *([medium] if medium else [])]:
        _wav(tmp_path / path) if path.endswith((".wav", ".flac")) else _bytes(tmp_path / path)
    manifest, coverage = import_test_set(importer, tmp_path, tmp_path / "run", published, suite)
    assert coverage.found == coverage.listed == len(manifest) == 1


def _bytes(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 64)


def test_not_found_errors_point_at_agomni_suites(tmp_path, capsys):
    for suite in LAYOUT_EXAMPLES:
        argv = ["run", suite, "--data-root", str(tmp_path), "--generator", f"folder:{tmp_path}"]
        assert main([*argv, "--out", str(tmp_path / "out" / suite), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "not found in the data root" in err and f"`agomni suites {suite}` prints the layout" in err
    assert main(["suites", "no-such-suite"]) == 2
    assert "unknown suite 'no-such-suite'" in capsys.readouterr().err

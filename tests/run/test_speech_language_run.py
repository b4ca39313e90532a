"""`agomni run tts-seed-en` on a seed-tts-eval list holding a Chinese line, an empty and a punctuation-only
text, speech at 0 dB SNR and noise: each item is judged in its own language or listed with the reason, and
the report, results.csv and `to_frame` show the flagged items and the corpus-level WER beside the mean.

Expected values come from pocketsphinx's own Decoder on the same files (read with soundfile) and jiwer:
per item and, for the corpus rate, jiwer over the whole list of scored transcripts. Several replicates
combine the corpus rate as the set value (mean) and keep every replicate's flags.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import string
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from agomni.metrics.speech.items import NON_SPEECH
from agomni.results import (
    CoverageEntry,
    Results,
    RunInfo,
    SetMetric,
    collect_provenance,
    read_results,
    to_frame,
)
from agomni.results.flags import corpus_rates, flag_counts, item_flags
from agomni.run.runner import combine
from tests.metrics.speech_fixtures import DATA, utterances
from tests.metrics.test_speech_eval import _pocketsphinx

_PUNCTUATION = str.maketrans("", "", string.punctuation.replace("'", ""))


def _seed_tts_eval_text(text: str) -> str:
    return text.translate(_PUNCTUATION).lower()


def _data_root(root: Path, texts: dict[str, str]) -> None:
    (root / "prompts").mkdir(parents=True)
    sf.write(root / "prompts" / "p.wav", utterances()["m1_0"][0], 16000)
    lines = [f"{utt}|A prompt.|prompts/p.wav|{text}" for utt, text in texts.items()]
    (root / "meta.lst").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _generated(folder: Path) -> None:
    """Each id's generated clip: committed sentences, one at 0 dB SNR in white noise, and noise alone."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for utt, source in (
        ("f2_0", "f2_0"),
        ("f2_1", "f2_1"),
        ("zh", "f2_3"),
        ("empty", "f2_4"),
        ("punct", "f2_5"),
    ):
        sf.write(folder / f"{utt}.flac", sf.read(DATA / f"{source}.flac")[0], 16000, subtype="PCM_16")
    speech = utterances()["f2_2"][0]
    noise = rng.standard_normal(len(speech))
    noisy = speech + noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2))  # 0 dB SNR
    sf.write(folder / "noisy.flac", 0.9 * noisy / np.abs(noisy).max(), 16000, subtype="PCM_16")
    sf.write(folder / "noise.flac", 0.3 * rng.standard_normal(48000), 16000, subtype="PCM_16")


@pytest.mark.slow  # pocketsphinx on five clips and a full run (about 20 s)
def test_items_judged_in_their_language_with_flags_and_corpus_wer_in_the_report(tmp_path):
    texts = {
        "f2_0": utterances()["f2_0"][1],
        "f2_1": utterances()["f2_1"][1].capitalize() + ".",
        "zh": "今天天气很好，我们去公园吧。",
        "empty": "",
        "punct": "...!?",
        "noisy": utterances()["f2_2"][1],
        "noise": utterances()["f2_6"][1],
    }
    root, gen, out = tmp_path / "test-zh", tmp_path / "gen", tmp_path / "run"
    _data_root(root, texts)
    _generated(gen)
    argv = [
        "run",
        "tts-seed-en",
        "--data-root",
        str(root),
        "--generator",
        f"folder:{gen}",
        "--metrics",
        "wer",
    ]
    assert main([*argv, "--out", str(out), "--format", "md,html,csv", "--no-progress"]) == 0

    scored = ["f2_0", "f2_1", "noisy", "noise"]
    refs = [_seed_tts_eval_text(texts[i]) for i in scored]
    hyps = [_pocketsphinx(gen / f"{i}.flac") for i in scored]
    results = read_results(out / "results.json")
    for item_id, ref, hyp in zip(scored, refs, hyps, strict=True):
        assert results.item_scores[item_id]["wer"] == pytest.approx(100 * jiwer.wer(ref, hyp), abs=1e-9)
    wer = next(m for m in results.metrics if m.name == "wer")
    assert wer.n == 4 and wer.value == pytest.approx(
        np.mean([100 * jiwer.wer(r, h) for r, h in zip(refs, hyps, strict=True)])
    )
    corpus = 100 * jiwer.wer(refs, hyps)  # jiwer over the whole set: total errors / total reference words
    assert abs(corpus - wer.value) > 1e-6  # the two conventions differ on this set

    # The Chinese line, the empty and the punctuation-only text are per-item entries, never numbers.
    unscored = {c.id: c.unscored.get("wer", "") for c in results.coverage}
    assert all(c.status == "ok" for c in results.coverage) and len(results.coverage) == len(texts)
    assert "language 'zh' is not supported by pocketsphinx" in unscored["zh"]
    assert "empty reference" in unscored["empty"] and "empty reference" in unscored["punct"]
    assert all("wer" not in results.item_scores.get(i, {}) for i in ("zh", "empty", "punct"))
    manifest = [json.loads(line) for line in (out / "agomni-seed-tts-eval.jsonl").read_text().splitlines()]
    assert {e["id"]: e["language"] for e in manifest}["zh"] == "zh"

    # Noise alone is flagged, speech at 0 dB SNR is not.
    flags = {f["id"]: f["flags"] for f in results.provenance.preprocessing["metrics"]["wer"]["flags"]}
    assert any(f.startswith(NON_SPEECH) for f in flags["noise"])
    assert not any(f.startswith(NON_SPEECH) for f in flags.get("noisy", []))

    # The report and results.csv show the flags and the corpus rate.
    with (out / "results.csv").open(encoding="utf-8") as fh:
        rows = {r["metric"]: r for r in csv.DictReader(fh)}
    assert rows["wer"]["flagged"] == str(len(flags)) and "non-speech audio: 1 (noise)" in rows["wer"]["flags"]
    assert float(rows["wer (corpus)"]["value"]) == pytest.approx(corpus, rel=1e-9)
    assert rows["wer (corpus)"]["unit"] == "% WER" and "utterance mean" in rows["wer (corpus)"]["profile"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert (
        "## Flagged items" in md and "wer: non-speech audio 1" in md and "- `noise`: non-speech audio" in md
    )
    assert f"| wer (corpus) | {corpus:.5g} | % WER |" in md
    assert "Flagged items" in (out / "index.html").read_text(encoding="utf-8")
    frame = to_frame(out)
    corpus_rows = frame[frame.level == "corpus"]
    assert list(corpus_rows.metric) == ["wer"] and corpus_rows.value.iloc[0] == pytest.approx(
        corpus, rel=1e-9
    )
    noise_row = frame[(frame.level == "item") & (frame.item == "noise")]
    assert noise_row["flag_reasons"].iloc[0].startswith(NON_SPEECH)


@pytest.mark.slow  # pocketsphinx on one clip (about 5 s)
def test_a_stated_language_the_text_s_script_contradicts_is_a_per_item_entry(tmp_path):
    """A manifest (e.g. one imported before the language came from the script) saying "en" for a Chinese
    text: the English recogniser never scores it (it gave WERs of 1600 %)."""
    gen = tmp_path / "gen"
    _generated(gen)
    items = [
        {"id": "f2_0", "task": "tts", "transcript": utterances()["f2_0"][1], "language": "en"},
        {"id": "zh", "task": "tts", "transcript": "今天天气很好", "language": "en"},
    ]
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    for extra in ("empty", "punct", "noisy", "noise", "f2_1"):
        (gen / f"{extra}.flac").unlink()
    argv = ["eval", "--pred", str(gen), "--manifest", str(manifest), "--metrics", "wer", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    results = read_results(tmp_path / "out" / "results.json")
    reason = {c.id: c.unscored for c in results.coverage}["zh"]["wer"]
    assert "written in Chinese characters (Han) but the item's language is 'en'" in reason
    assert set(results.item_scores) == {"f2_0"}


def test_several_replicates_average_the_corpus_rate_and_keep_every_replicate_s_flags():
    """`agomni run --seeds A,B`: the combined results' corpus WER is the mean of the replicates' (as the
    set value is) and each replicate's flags stay, named by replicate, so the report shows them all."""

    def replicate(value, corpus, flags):
        provenance = dataclasses.replace(
            collect_provenance(seed=0),
            preprocessing={"metrics": {"wer": {"corpus": corpus, "flags": flags}}},
        )
        metric = SetMetric("wer", value, "% WER", False, "seed-tts-eval", n=2)
        coverage = (CoverageEntry("a", "ok"), CoverageEntry("b", "ok"))
        return Results(
            RunInfo("r", "2026-01-01T00:00:00Z"), provenance, {"a": {"wer": value}}, (metric,), coverage
        )

    first = replicate(10.0, 12.0, [{"id": "a", "flags": ["non-speech audio (voiced fraction 0.01)"]}])
    second = replicate(20.0, 30.0, [{"id": "b", "flags": ["the recogniser returned no words"]}])
    combined = combine(
        [first, second], ["seed-0/sample-0", "seed-1/sample-0"], RunInfo("c", "2026-01-01T00:00:00Z")
    )
    assert corpus_rates(combined) == {"wer": pytest.approx(np.mean([12.0, 30.0]))}
    flags = item_flags(combined)["wer"]
    assert flags == {
        "a": ["non-speech audio (voiced fraction 0.01) (replicate seed-0/sample-0)"],
        "b": ["the recogniser returned no words (replicate seed-1/sample-0)"],
    }
    assert flag_counts(flags) == {"non-speech audio": 1, "the recogniser returned no words": 1}

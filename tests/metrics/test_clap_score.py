"""LAION-CLAP score: our text tower, tokenizer and score vs laion-clap 1.1.7's ``CLAP_Module`` with the same
random weights and the same tokenizer files; per-item errors; the first-10-s rule; `agomni eval`.

The tokenizer files are a small byte-level BPE vocabulary trained here (`train_tokenizer_files`); both
sides read the same two files (ours through `RobertaBPETokenizer`, the reference through
``transformers.RobertaTokenizer``). References are numpy cosines of the upstream embeddings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from agomni import weights
from agomni.cli import main
from agomni.errors import WeightsError
from agomni.metrics.embedders.clap import load_clap_weights
from agomni.metrics.embedders.clap_text import ClapTextNet, load_text_state
from agomni.metrics.embedders.roberta_bpe import REGISTRY_FILES, RobertaBPETokenizer
from agomni.metrics.item_outcomes import combine, metric_config
from agomni.metrics.text_audio.clap_score import ClapScorer, ClapTextItem, outcomes, score_items
from agomni.results import read_results
from tests.metrics.clap_upstream import ROBERTA_BASE, build_upstream, roberta_tokenizer, train_tokenizer_files
from tests.metrics.passt_clap_reference import av_benchmark_wave, rel_diff, write_tone

pytestmark = pytest.mark.filterwarnings("ignore")
SR = 48000
CAPTIONS = [
    "A dog barks while a man's car engine revs up.",
    "Rain falls on a tin roof; thunder rumbles in the distance!",
    "über 3½ Minuten: café music 你好, they'll sing <mask> loudly",
    "word " * 120,  # truncated to 77 tokens
    "x",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("roberta-small")
    train_tokenizer_files(folder)
    return folder


@pytest.fixture(scope="module")
def pair(tokenizer_dir):
    """(upstream CLAP_Module with HTSAT-tiny + roberta-base, random; our scorer from its state dict)."""
    upstream = build_upstream("HTSAT-tiny", ROBERTA_BASE, perturb_text=True)
    upstream.tokenize = roberta_tokenizer(tokenizer_dir)
    state = {"module." + k: v for k, v in upstream.model.state_dict().items()}  # official file layout
    tokenizer = RobertaBPETokenizer(tokenizer_dir / "vocab.json", tokenizer_dir / "merges.txt")
    return upstream, ClapScorer(load_clap_weights("630k-audioset-best", state_dict=state), tokenizer)


def test_tokenizer_matches_roberta_tokenizer(tokenizer_dir):
    ours = RobertaBPETokenizer(tokenizer_dir / "vocab.json", tokenizer_dir / "merges.txt")
    texts = [
        *CAPTIONS,
        "",
        "a  b   c\n\nd \t end ",
        " leading and trailing ",
        "x <mask> y <s> z</s>q<pad>",
        "emoji 🎵🎶 ok, nbsp\u00a0and em\u2003space",
        "numbers ²³ ١٢٣ Ⅻ 2024",
        "x'S 'LL '' we've I'd",
    ]
    ref = roberta_tokenizer(tokenizer_dir)(
        texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    )
    got = ours(texts)
    assert got["input_ids"].shape == (len(texts), 77)
    assert torch.equal(got["input_ids"], ref["input_ids"])
    assert torch.equal(got["attention_mask"], ref["attention_mask"])
    assert int(got["attention_mask"][3].sum()) == 77  # the long caption was truncated, </s> kept
    assert int(got["input_ids"][3, 76]) == 2


def test_tokenizer_files_are_checked(tmp_path, tokenizer_dir):
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text())
    del vocab["<pad>"]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(WeightsError, match="missing"):
        RobertaBPETokenizer(tmp_path / "vocab.json", tokenizer_dir / "merges.txt")
    (tmp_path / "merges.txt").write_text("a b c\n")
    with pytest.raises(WeightsError, match="two space-separated symbols"):
        RobertaBPETokenizer(tokenizer_dir / "vocab.json", tmp_path / "merges.txt")


def test_text_embedding_matches_upstream(pair):
    upstream, scorer = pair
    with torch.no_grad():
        ref = upstream.get_text_embedding(CAPTIONS, use_tensor=True)
    got = scorer.embed_text(CAPTIONS)
    assert got.shape == (len(CAPTIONS), 512)
    assert rel_diff(got, ref) < 1e-4
    assert torch.allclose(got.norm(dim=1), torch.ones(len(CAPTIONS)), atol=1e-5)
    assert float((got[0] - got[1]).abs().max()) > 1e-2  # captions differ meaningfully


def test_clap_score_equals_numpy_cosine_of_upstream_embeddings(pair, tmp_path):
    """Files as users have them (stereo 44.1 kHz, mono 22.05 kHz, 13 s at 48 kHz); the 13 s clip is scored
    on its first 10 s (av-benchmark's loader with --audio_length 10, then laion-clap without a crop)."""
    upstream, scorer = pair
    clips = {"stereo": (44100, 3.0, 2), "mono": (22050, 6.0, 1), "long": (48000, 13.0, 1)}
    items = []
    for n, (name, (rate, seconds, channels)) in enumerate(clips.items()):
        write_tone(tmp_path / f"{name}.wav", rate, seconds, channels, seed=n)
        items.append(ClapTextItem(name, tmp_path / f"{name}.wav", CAPTIONS[n]))
    scores = score_items(scorer, items, progress=False)
    with torch.no_grad():
        text = upstream.get_text_embedding([i.caption for i in items], use_tensor=True).numpy()
        for k, item in enumerate(items):
            wave = av_benchmark_wave(Path(item.audio), SR, audio_length=10.0)
            audio = upstream.get_audio_embedding_from_data(wave, use_tensor=True).numpy()[0]
            assert scores[k].error is None
            assert abs(scores[k].cosine - cosine(audio, text[k])) < 1e-4
    result = combine("clap", metric_config("clap", scorer.config()), outcomes(scores))
    assert result.value == pytest.approx(np.mean([s.cosine for s in scores]), abs=1e-12)
    assert (result.unit, result.higher_is_better) == ("cosine", True)
    assert "first 10 s" in result.details["long_clips"]


def test_clips_over_10_s_use_their_first_10_s(pair):
    """The >10 s rule against a hand computation: the cosine of a 13 s clip equals the numpy cosine of the
    upstream embedding of its first 480000 samples, and differs from that of its last 10 s."""
    upstream, scorer = pair
    x = torch.randn(1, 13 * SR, generator=torch.Generator().manual_seed(5)) * 0.1
    x[:, 10 * SR :] *= 4.0  # the tail differs from the head
    with torch.no_grad():
        text = upstream.get_text_embedding([CAPTIONS[0]], use_tensor=True).numpy()[0]
        head = upstream.get_audio_embedding_from_data(x[:, : 10 * SR], use_tensor=True).numpy()[0]
        tail = upstream.get_audio_embedding_from_data(x[:, -10 * SR :], use_tensor=True).numpy()[0]
    ours = scorer.embed_audio(x)[0].numpy()
    got = cosine(ours, scorer.embed_text([CAPTIONS[0]])[0].numpy())
    assert abs(got - cosine(head, text)) < 1e-4
    assert abs(cosine(tail, text) - cosine(head, text)) > 1e-3
    assert np.array_equal(ours, scorer.embed_audio(x)[0].numpy())  # deterministic


def test_bad_items_are_item_errors(pair, tmp_path):
    _, scorer = pair
    write_tone(tmp_path / "ok.wav", 48000, 2.0, 1, seed=1)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    sf.write(tmp_path / "tiny.wav", np.full(300, 0.1), 48000, subtype="PCM_16")
    items = [
        ClapTextItem("ok", tmp_path / "ok.wav", "a tone"),
        ClapTextItem("empty", tmp_path / "ok.wav", ""),
        ClapTextItem("blank", tmp_path / "ok.wav", "  \t"),
        ClapTextItem("none", tmp_path / "ok.wav", None),
        ClapTextItem("broken", tmp_path / "broken.wav", "a tone"),
        ClapTextItem("tiny", tmp_path / "tiny.wav", "a tone"),
    ]
    scores = score_items(scorer, items, progress=False)
    result = combine("clap", metric_config("clap", scorer.config()), outcomes(scores))
    assert result.details["items_scored"] == 1 and result.details["items_failed"] == 5
    reasons = {e["id"]: e["reason"] for e in result.details["errors"]}
    assert reasons["empty"].startswith("empty caption") and reasons["blank"].startswith("empty caption")
    assert "no caption" in reasons["none"]
    assert "broken.wav" in reasons["broken"]
    assert "needs at least 1024" in reasons["tiny"]
    assert result.value == result.details["per_item"]["ok"]


@pytest.mark.slow
def test_whole_checkpoint_loads_once_through_the_registry(tmp_path, monkeypatch, tokenizer_dir):
    """Official layout ({"state_dict": {"module.*"}, numpy scalars}, legacy position_ids buffer) in the
    cache: one file gives both towers, each loaded strictly; the tokenizer files come from the cache."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    source = load_clap_weights("music-audioset-90.14", random_weights=True, seed=3)
    state = {f"module.{k}": v for tower in source.towers.values() for k, v in tower.items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    state["module.logit_scale_t"] = torch.tensor(1.0)
    path = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    torch.save({"state_dict": state, "epoch": np.int64(15)}, path)
    weights.import_file("laion-clap-music-audioset-90.14", path)  # unpinned entry: trust on first use
    for name, file in zip(REGISTRY_FILES, ("vocab.json", "merges.txt"), strict=True):
        weights.import_file(name, tokenizer_dir / file)
    scorer = ClapScorer.from_registry("music-audioset-90.14")
    assert scorer.clap_weights.comparable_with_published and not scorer.random_weights
    for name, tensor in scorer.text.state_dict().items():
        assert torch.equal(tensor, source.towers["text"][name]), name
    assert set(scorer.config()["tokenizer"]["files_sha256"]) == set(REGISTRY_FILES)
    assert scorer.config()["checkpoint"] == weights.sha256_of("laion-clap-music-audioset-90.14")

    bad = dict(source.towers["text"])
    bad["text_branch.embeddings.position_ids"] = torch.arange(514)[None] + 1
    with pytest.raises(WeightsError, match="position_ids"):
        load_text_state(ClapTextNet(), bad, "test")
    del bad["text_branch.embeddings.position_ids"], bad["text_branch.pooler.dense.bias"]
    with pytest.raises(WeightsError, match="missing keys"):
        load_text_state(ClapTextNet(), bad, "test")


def test_random_text_weights_are_seeded():
    a = load_clap_weights("630k-audioset-best", towers=("text",), random_weights=True, seed=1)
    b = load_clap_weights("630k-audioset-best", towers=("text",), random_weights=True, seed=1)
    c = load_clap_weights("630k-audioset-best", towers=("text",), random_weights=True, seed=2)
    assert "audio" not in a.towers and a.checkpoint == "random-weights:1" and not a.comparable_with_published
    key = "text_projection.0.weight"
    assert torch.equal(a.towers["text"][key], b.towers["text"][key])
    assert not torch.equal(a.towers["text"][key], c.towers["text"][key])


@pytest.mark.slow
def test_agomni_eval_clap_equals_numpy_cosine_of_upstream(tmp_path, monkeypatch, tokenizer_dir, capsys):
    """`agomni eval --metrics clap --manifest ... --random-weights`: the default checkpoint layout
    (HTSAT-base + RoBERTa-base) with seeded random weights; the same weights loaded into laion-clap give
    the per-item references. An item without a caption and an undecodable clip are item errors."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    for name, file in zip(REGISTRY_FILES, ("vocab.json", "merges.txt"), strict=True):
        weights.import_file(name, tokenizer_dir / file)
    pred = tmp_path / "pred"
    pred.mkdir()
    write_tone(pred / "a.wav", 44100, 3.0, 2, seed=1)
    write_tone(pred / "b.wav", 16000, 11.0, 1, seed=2)
    write_tone(pred / "c.wav", 48000, 2.0, 1, seed=3)
    (pred / "d.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    lines = [
        {"id": "a", "task": "t2a", "text": CAPTIONS[0]},
        {"id": "b", "task": "t2a", "text": CAPTIONS[1]},
        {"id": "c", "task": "tts", "transcript": "no caption here"},
        {"id": "d", "task": "t2a", "text": CAPTIONS[2]},
    ]
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "run"
    args = ["eval", "--no-progress", "--random-weights", "--seed", "4", "--manifest", str(manifest)]
    assert main([*args, "--pred", str(pred), "--metrics", "clap", "--out", str(out)]) == 0
    assert "NOT comparable with published numbers" in capsys.readouterr().out
    results = read_results(out / "results.json")
    (metric,) = results.metrics
    assert (metric.name, metric.unit, metric.higher_is_better, metric.n) == ("clap", "cosine", True, 2)
    details = results.provenance.preprocessing["metrics"]["clap"]
    assert details["random_weights"] is True and results.provenance.random_weights is True
    assert details["scale"].startswith("mean cosine x1 ") and "first 10 s" in details["long_clips"]
    reasons = {e["id"]: e["reason"] for e in details["errors"]}
    assert set(reasons) == {"c", "d"} and "no caption" in reasons["c"] and "d.wav" in reasons["d"]
    coverage = {c.id: c for c in results.coverage}  # the run's coverage table names them too
    assert {i: c.unscored for i, c in coverage.items()} == {
        "a": {},
        "b": {},
        "c": {"clap": reasons["c"]},
        "d": {"clap": reasons["d"]},
    }

    ours = load_clap_weights("music-speech-audioset-89.98", random_weights=True, seed=4)
    upstream = build_upstream("HTSAT-base", ROBERTA_BASE)
    state = {k: v for tower in ours.towers.values() for k, v in tower.items()}
    missing, unexpected = upstream.model.load_state_dict(state, strict=False)
    assert not unexpected and all(
        k.startswith(("text_transform.", "audio_transform.", "logit_")) for k in missing
    )
    upstream.tokenize = roberta_tokenizer(tokenizer_dir)
    with torch.no_grad():
        text = upstream.get_text_embedding(CAPTIONS[:2], use_tensor=True).numpy()
        expected = {}
        for k, item in enumerate(("a", "b")):
            wave = av_benchmark_wave(pred / f"{item}.wav", SR, audio_length=10.0)
            audio = upstream.get_audio_embedding_from_data(wave, use_tensor=True).numpy()[0]
            expected[item] = cosine(audio, text[k])
    for item, value in expected.items():
        assert abs(results.item_scores[item]["clap"] - value) < 1e-4, item
    assert metric.value == pytest.approx(np.mean(list(expected.values())), abs=1e-4)


def test_agomni_eval_clap_needs_a_manifest(tmp_path, capsys):
    pred = tmp_path / "pred"
    pred.mkdir()
    write_tone(pred / "a.wav", 16000, 1.0, 1, seed=0)
    assert main(["eval", "--no-progress", "--random-weights", "--pred", str(pred), "--metrics", "clap"]) == 2
    assert "pass --manifest (items with a 'text' field)" in capsys.readouterr().err

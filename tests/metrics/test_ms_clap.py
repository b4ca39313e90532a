"""MS-CLAP score: our towers, GPT-2 tokenizer and input handling vs msclap 1.3.4's own ``CLAPWrapper``
(the calls av-benchmark makes: ``get_text_embeddings([caption])``, ``get_audio_embeddings([path])``) on the
same random weights and tokenizer files (tests/metrics/msclap_upstream.py); per-item errors; `agomni eval`.
References are the upstream embeddings and their torch / numpy cosines.
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
from agomni.errors import MetricInputError, WeightsError
from agomni.metrics.embedders.gpt2_bpe import REGISTRY_FILES, Gpt2BPETokenizer
from agomni.metrics.item_outcomes import combine, metric_config
from agomni.metrics.text_audio.clap_score import ClapTextItem, outcomes, score_items
from agomni.metrics.text_audio.ms_clap_net import Gpt2Size, MsClapWeights, split_towers
from agomni.metrics.text_audio.ms_clap_score import NAME, MsClapScorer, fit_to_clip, load_clip
from agomni.results import read_results
from tests.metrics.msclap_upstream import SMALL_GPT2, gpt2_tokenizer, upstream_wrapper, write_gpt2_vocabulary
from tests.metrics.test_vggish import relative_spread

pytestmark = pytest.mark.filterwarnings("ignore")
CAPTIONS = [
    "A dog barks while a man's car engine revs up.",
    "Rain falls on a tin roof; thunder rumbles in the distance!",  # '!' is GPT-2's id 0: read earlier
    "über 3½ Minuten: café music 你好, they'll sing <|endoftext|> loudly",
    "word " * 120,  # 121 tokens: msclap does not truncate
    "x",
]


def _signal(kind: int, seconds: float, rate: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    rows = []
    for c in range(channels):
        if kind % 3 == 0:
            x = 0.4 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t + c)
        elif kind % 3 == 1:
            x = rng.uniform(0.05, 0.3) * rng.standard_normal(t.size)
        else:
            x = 0.2 * np.sign(np.sin(2 * np.pi * rng.uniform(2, 9) * t)) * rng.standard_normal(t.size)
        rows.append(x)
    return np.stack(rows, axis=1).astype(np.float32)


#: (file name, seconds, rate, channels, subtype): stereo 24-bit at 48 kHz longer than 7 s, a sub-second
#: clip, a 6-channel file, the model's own rate, a 16 kHz FLAC.
CLIPS = [
    ("stereo48k.wav", 8.0, 48000, 2, "PCM_24"),
    ("short.wav", 0.4, 22050, 1, "PCM_16"),
    ("six.wav", 1.5, 48000, 6, "PCM_24"),
    ("native.wav", 3.0, 44100, 1, "FLOAT"),
    ("speech16k.flac", 9.0, 16000, 1, "PCM_16"),
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("msclap-clips")
    paths = []
    for k, (name, seconds, rate, channels, subtype) in enumerate(CLIPS):
        path = folder / name
        sf.write(str(path), _signal(k, seconds, rate, channels, seed=k), rate, subtype=subtype)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return write_gpt2_vocabulary(tmp_path_factory.mktemp("gpt2-small"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tokenizer_dir):
    """(msclap's CLAPWrapper with random weights, our scorer on the same state dict and vocabulary)."""
    vocab = len(json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8")))
    with upstream_wrapper(tmp_path_factory.mktemp("msclap"), tokenizer_dir) as upstream:
        loaded = upstream.clap.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in upstream.state.items())  # it read every tensor
        size = Gpt2Size(vocab_size=vocab, **SMALL_GPT2)
        ours = MsClapWeights.from_state_dict(upstream.state, text_size=size)
        tokenizer = Gpt2BPETokenizer(tokenizer_dir / "vocab.json", tokenizer_dir / "merges.txt")
        yield upstream, MsClapScorer(ours, tokenizer)


def rel(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.double() - ref.double()).norm() / ref.double().norm())


def test_tokenizer_matches_transformers_gpt2_tokenizer_as_msclap_calls_it(tokenizer_dir):
    ours = Gpt2BPETokenizer(tokenizer_dir / "vocab.json", tokenizer_dir / "merges.txt")
    ref = gpt2_tokenizer(tokenizer_dir)  # as msclap builds it
    ref.add_special_tokens({"pad_token": "!"})
    for caption in CAPTIONS:
        expected = ref.encode_plus(
            text=caption + " <|endoftext|>", add_special_tokens=True, max_length=77, padding="max_length"
        )["input_ids"]
        got = ours([caption])["input_ids"][0].tolist()
        assert got == list(expected), caption
    with pytest.raises(MetricInputError, match="1024"):
        ours(["word " * 1100])


def test_tokenizer_files_are_checked(tmp_path, tokenizer_dir):
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text())
    del vocab["<|endoftext|>"]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(WeightsError, match="GPT-2 needs are missing"):
        Gpt2BPETokenizer(tmp_path / "vocab.json", tokenizer_dir / "merges.txt")


@pytest.mark.slow
def test_text_embeddings_equal_msclap(pair):
    upstream, ours = pair
    for caption in CAPTIONS:
        ref = upstream.get_text_embeddings([caption])
        got = ours.embed_text([caption])
        assert got.shape == ref.shape == (1, 1024)
        assert rel(got, ref) < 1e-4, caption
    # batched: the rows equal the one-at-a-time embeddings (a batch is padded to its longest caption)
    together = ours.embed_text(CAPTIONS)
    assert rel(together, torch.cat([ours.embed_text([c]) for c in CAPTIONS])) < 1e-5


@pytest.mark.slow
def test_audio_embeddings_and_cosines_equal_msclap(pair, clips):
    """Stereo 24-bit 48 kHz over 7 s, sub-second, 6-channel, 44.1 kHz float, 16 kHz FLAC: msclap's
    loader (resample, channel concatenation, repeat / crop) and network against ours."""
    upstream, ours = pair
    refs = []
    for path in clips:
        ref = upstream.get_audio_embeddings([str(path)])
        got = ours.embed_audio(load_clip(path)[None])
        assert got.shape == ref.shape == (1, 1024)
        assert rel(got, ref) < 1e-4, path.name
        refs.append(ref[0])
    text = upstream.get_text_embeddings(CAPTIONS[:1])[0]
    items = [ClapTextItem(p.stem, p, CAPTIONS[0]) for p in clips]
    scores = score_items(ours, items, progress=False, name=NAME)
    for item, ref in zip(scores, refs, strict=True):
        expected = float(torch.cosine_similarity(text[None], ref[None], dim=-1))
        assert item.cosine == pytest.approx(expected, abs=1e-5), item.item_id


def test_fit_to_clip_follows_msclap():
    x = torch.arange(5, dtype=torch.float32)
    assert fit_to_clip(x, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert fit_to_clip(x, 5).tolist() == x.tolist()  # n == length: one copy (msclap's >= branch)
    assert fit_to_clip(x, 3).tolist() == [0, 1, 2]  # longer: the first samples (msclap: random offset)
    with pytest.raises(MetricInputError):
        fit_to_clip(torch.zeros(0), 3)


def test_checkpoint_layout_is_checked():
    state = {"audio_encoder.base.htsat.bn0.weight": torch.ones(64), "optimizer.step": torch.ones(1)}
    with pytest.raises(WeightsError, match=r"optimizer\.step"):
        split_towers(state, "ckpt")
    towers = split_towers(
        {"logit_scale": torch.ones(()), "caption_encoder.base.h.0.attn.bias": torch.ones(1)}, "c"
    )
    assert towers == {"audio": {}, "text": {}}


@pytest.mark.slow
def test_random_weights_spread_audio_embeddings_across_clips(clips):
    net = MsClapWeights.random(seed=0).audio.eval()
    with torch.no_grad():
        rows = torch.cat([net(load_clip(p)[None]) for p in clips]).double().numpy()
    assert relative_spread(rows) > 0.3
    again = MsClapWeights.random(seed=0).audio.state_dict()
    assert all(torch.equal(v, again[k]) for k, v in net.state_dict().items())


@pytest.mark.slow
def test_agomni_eval_ms_clap_with_item_errors(tmp_path, monkeypatch, tokenizer_dir, clips, capsys):
    """`agomni eval --metrics ms_clap --random-weights`: the registry's tokenizer files, seeded random
    towers; the values equal the scorer's own cosines for the same seed; an item without a caption and
    an undecodable clip are item errors listed in coverage."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    for name, file in zip(REGISTRY_FILES, ("vocab.json", "merges.txt"), strict=True):
        weights.import_file(name, tokenizer_dir / file)
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "a.wav").write_bytes(clips[0].read_bytes())
    (pred / "b.wav").write_bytes(clips[1].read_bytes())
    (pred / "c.wav").write_bytes(clips[3].read_bytes())
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
    assert main([*args, "--pred", str(pred), "--metrics", "ms_clap", "--out", str(out)]) == 0
    assert "NOT comparable with published numbers" in capsys.readouterr().out
    results = read_results(out / "results.json")
    (metric,) = results.metrics
    assert (metric.name, metric.unit, metric.higher_is_better, metric.n) == ("ms_clap", "cosine", True, 2)
    details = results.provenance.preprocessing["metrics"]["ms_clap"]
    assert details["random_weights"] is True and "first 7 s" in details["input"]["long_clips"]
    reasons = {e["id"]: e["reason"] for e in details["errors"]}
    assert set(reasons) == {"c", "d"} and "no caption" in reasons["c"] and "d.wav" in reasons["d"]
    coverage = {c.id: c.unscored for c in results.coverage}
    assert coverage == {"a": {}, "b": {}, "c": {"ms_clap": reasons["c"]}, "d": {"ms_clap": reasons["d"]}}

    scorer = MsClapScorer.random(4)
    text = scorer.embed_text(CAPTIONS[:2])
    for k, item in enumerate("ab"):
        audio = scorer.embed_audio(load_clip(pred / f"{item}.wav")[None])[0].double().numpy()
        t = text[k].double().numpy()
        expected = float(audio @ t / (np.linalg.norm(audio) * np.linalg.norm(t)))
        assert results.item_scores[item]["ms_clap"] == pytest.approx(expected, abs=1e-5)
    one = score_items(scorer, [ClapTextItem("a", pred / "a.wav", CAPTIONS[0])], progress=False, name=NAME)
    summary = combine(NAME, metric_config(NAME, scorer.config()), outcomes(one))
    assert summary.unit == "cosine" and summary.higher_is_better

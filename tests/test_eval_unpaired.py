"""Unpaired sets under every named profile (``--allow-missing``): each metric uses exactly the items its
toolkit's policy says (av-benchmark: FD-VGGish/FD-PANNs over all clips of each side, FD-PaSST and KL over
the pairs, IS over all generated clips; audioldm_eval and stable-audio-metrics: FD over all, KL over the
pairs; fadtk/kadtk: whole sets; agomni-offline: pairs only), and the numbers equal an independent
computation: each toolkit's loader redone here with soundfile + numpy/torchaudio/soxr, the embedders
called directly, FD/KL/IS/KAD in numpy/scipy. Random weights are seeded and spread realistically, so KL
and IS land far from their trivial values (0 and 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
import torchaudio
from scipy import linalg
from scipy.spatial.distance import cdist

from agomni.evaluate import EvalRequest, evaluate
from agomni.metrics import offline_embedder
from agomni.metrics.embedders.panns import PannsCnn14Embedder
from agomni.metrics.embedders.passt import PasstEmbedder
from agomni.metrics.embedders.vggish import VGGishEmbedder

RATE = 16000
PAIRED = [f"item{i:02d}" for i in range(10)]
GEN_ONLY, REF_ONLY = "gen_only", "ref_only"


def _clip(seed: int) -> np.ndarray:
    """1 s at 16 kHz: a tone, noise or gated noise (so classifier outputs differ between clips)."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    kind = seed % 3
    if kind == 0:
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
    elif kind == 1:
        x = rng.uniform(0.02, 0.3) * rng.standard_normal(t.size)
    else:
        x = 0.3 * np.sign(np.sin(2 * np.pi * rng.uniform(2, 8) * t)) * rng.standard_normal(t.size) * 0.3
    return np.clip(x + 0.01 * rng.standard_normal(t.size), -1, 1)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("unpaired")
    for side, ids, offset in (("pred", [*PAIRED, GEN_ONLY], 0), ("ref", [*PAIRED, REF_ONLY], 500)):
        (root / side).mkdir()
        for i, item in enumerate(ids):
            sf.write(root / side / f"{item}.wav", _clip(offset + i), RATE, subtype="PCM_16")
    return root / "pred", root / "ref"


def _read(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float64")
    assert rate == RATE
    return data


def _prepared(path: Path, profile: str, rate: int) -> torch.Tensor:
    """Each toolkit's loader, redone independently (mono 16 kHz sources)."""
    x = _read(path)
    if profile in ("av-benchmark", "audioldm-eval"):
        x = x - x.mean()
    if profile == "audioldm-eval":
        x = np.pad(x, (0, max(0, 32000 - x.size)))
    if profile == "stable-audio-metrics":
        x = x * (10 ** (-1 / 20) / np.abs(x).max())
    if rate != RATE and profile == "av-benchmark":
        y = torchaudio.transforms.Resample(RATE, rate)(torch.from_numpy(x.astype(np.float32))[None])[0]
        return y
    if rate != RATE:
        x = soxr.resample(x, RATE, rate, quality="HQ")
    return torch.from_numpy(x.astype(np.float32))


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """FD with Tr sqrt(S1 S2) from the eigenvalues of sqrt(S1) S2 sqrt(S1) (stable for the singular
    covariances of few clips in many dimensions, where scipy's sqrtm warns)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_sqrt = np.sqrt(np.clip(linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _inception(logits_by_id: dict[str, np.ndarray], splits: int = 10) -> float:
    """av-benchmark compute_isc: ids sorted, RandomState(2020) permutation, 10 splits, mean of exp(KL)."""
    x = np.stack([logits_by_id[i] for i in sorted(logits_by_id)])
    p = _softmax(x[np.random.RandomState(2020).permutation(len(x))])
    scores = []
    for k in range(splits):
        part = p[k * len(p) // splits : (k + 1) * len(p) // splits]
        scores.append(np.exp((part * (np.log(part) - np.log(part.mean(0)))).sum(1).mean()))
    return float(np.mean(scores))


def _outputs(folder: Path, ids: list[str], profile: str, embedder, rate: int) -> dict[str, dict]:
    with torch.no_grad():
        return {i: embedder.outputs(_prepared(folder / f"{i}.wav", profile, rate)[None]) for i in ids}


def _rows(outputs: dict[str, dict], ids: list[str], dtype=np.float64) -> np.ndarray:
    rows = [outputs[i]["embed"][0].double().numpy().reshape(-1, outputs[i]["embed"].shape[-1]) for i in ids]
    return np.concatenate(rows).astype(dtype).astype(np.float64)


def _run(pred: Path, ref: Path, out: Path, metrics: tuple[str, ...], profile: str):
    return evaluate(
        EvalRequest(
            pred_dir=pred,
            ref_dir=ref,
            metrics=metrics,
            profile=profile,
            allow_missing=True,
            random_weights=True,
            use_cache=False,
            progress=False,
            out=out,
        )
    )


def _check_coverage(outcome, used_by: set[str], left_out_by: set[str]) -> None:
    coverage = {c.id: c for c in outcome.results.coverage}
    assert {i for i, c in coverage.items() if c.status == "ok"} == set(PAIRED)
    for item, lacking in ((GEN_ONLY, "reference"), (REF_ONLY, "generated")):
        assert coverage[item].status == "missing" and f"no {lacking} file" in coverage[item].reason
    details = outcome.results.provenance.preprocessing["metrics"]
    for name in used_by:
        assert GEN_ONLY in details[name]["unpaired_items_used"] or name.startswith("is_"), name
    for name in left_out_by:
        assert {GEN_ONLY, REF_ONLY} <= set(details[name]["unpaired_items_left_out"]), name


@pytest.mark.slow  # VGGish, PANNs and PaSST with random weights on 22 clips (about 40 s on 2 cores)
def test_av_benchmark_policy(sets, tmp_path) -> None:
    pred, ref = sets
    metrics = ("fd_vggish", "fd_panns", "fd_passt", "kl_panns", "is_panns")
    outcome = _run(pred, ref, tmp_path / "run", metrics, "av-benchmark")
    values = {m.name: m for m in outcome.results.metrics}
    gen_all, ref_all = [*PAIRED, GEN_ONLY], [*PAIRED, REF_ONLY]

    vgg = VGGishEmbedder.random(seed=0)
    g, r = (
        _outputs(pred, gen_all, "av-benchmark", vgg, RATE),
        _outputs(ref, ref_all, "av-benchmark", vgg, RATE),
    )
    assert values["fd_vggish"].value == pytest.approx(
        _frechet(_rows(g, gen_all), _rows(r, ref_all)), rel=1e-5
    )

    panns = PannsCnn14Embedder.random("panns-cnn14-16k", seed=0)
    g = _outputs(pred, gen_all, "av-benchmark", panns, RATE)
    r = _outputs(ref, ref_all, "av-benchmark", panns, RATE)
    assert values["fd_panns"].value == pytest.approx(_frechet(_rows(g, gen_all), _rows(r, ref_all)), rel=1e-5)
    p_ref = _softmax(np.stack([r[i]["logits"][0].double().numpy() for i in PAIRED]))
    p_gen = _softmax(np.stack([g[i]["logits"][0].double().numpy() for i in PAIRED]))
    kl = float((p_ref * (np.log(p_ref) - np.log(p_gen))).sum(1).mean())
    assert values["kl_panns"].value == pytest.approx(kl, rel=1e-5) and values["kl_panns"].n == len(PAIRED)
    inception = _inception({i: g[i]["logits"][0].double().numpy() for i in gen_all})
    assert values["is_panns"].value == pytest.approx(inception, rel=1e-5) and values["is_panns"].n == 11
    assert kl > 0.2  # far from the trivial 0: random weights spread realistically

    passt = PasstEmbedder(random_weights=True, seed=0)
    g = _outputs(pred, PAIRED, "av-benchmark", passt, 32000)
    r = _outputs(ref, PAIRED, "av-benchmark", passt, 32000)
    assert values["fd_passt"].value == pytest.approx(_frechet(_rows(g, PAIRED), _rows(r, PAIRED)), rel=1e-4)
    details = outcome.results.provenance.preprocessing["metrics"]
    assert (details["fd_vggish"]["n_generated_items"], details["fd_vggish"]["n_reference_items"]) == (11, 11)
    assert (details["fd_passt"]["n_generated_items"], details["fd_passt"]["n_reference_items"]) == (10, 10)
    _check_coverage(outcome, {"fd_vggish", "fd_panns", "is_panns"}, {"fd_passt", "kl_panns"})


@pytest.mark.parametrize("profile", ["audioldm-eval", "stable-audio-metrics"])
def test_whole_folder_fd_and_paired_kl_policies(sets, tmp_path, profile) -> None:
    """audioldm_eval and stable-audio-metrics: FD over each whole folder, KL over the pairs (in their
    own directions: KL(ref||gen) and KL(gen||ref) with log(p_ref + 1e-6))."""
    pred, ref = sets
    outcome = _run(pred, ref, tmp_path / "run", ("fd_panns", "kl_panns"), profile)
    values = {m.name: m.value for m in outcome.results.metrics}
    gen_all, ref_all = [*PAIRED, GEN_ONLY], [*PAIRED, REF_ONLY]
    panns = PannsCnn14Embedder.random("panns-cnn14-16k", seed=0)
    g, r = _outputs(pred, gen_all, profile, panns, RATE), _outputs(ref, ref_all, profile, panns, RATE)
    assert values["fd_panns"] == pytest.approx(_frechet(_rows(g, gen_all), _rows(r, ref_all)), rel=1e-5)
    p_ref = _softmax(np.stack([r[i]["logits"][0].double().numpy() for i in PAIRED]))
    p_gen = _softmax(np.stack([g[i]["logits"][0].double().numpy() for i in PAIRED]))
    if profile == "audioldm-eval":
        kl = (p_ref * (np.log(p_ref) - np.log(p_gen))).sum(1).mean()
    else:
        kl = (p_gen * (np.log(p_gen) - np.log(p_ref + 1e-6))).sum(1).mean()
    assert values["kl_panns"] == pytest.approx(float(kl), rel=1e-5)
    assert kl > 0.2  # far from the trivial 0: random weights spread realistically
    _check_coverage(outcome, {"fd_panns"}, {"kl_panns"})


def test_fadtk_policy_compares_whole_sets_in_float16(sets, tmp_path, monkeypatch) -> None:
    """fadtk rounds every embedding to float16, then compares the whole sets. Rounding turns ~1e-7
    relative differences in the float32 embeddings (batching, summation order) into ~3e-5 FD differences
    (an element near a rounding boundary goes either way), so the rounding and the maths are checked on
    the very float32 embeddings the pipeline's network returned (recorded on the way out, each clip's
    side found from its audio), and those embeddings against per-file calls on independently loaded audio."""
    pred, ref = sets
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    outputs = VGGishEmbedder.outputs

    def recorded(self, audio: torch.Tensor) -> dict:
        heads = outputs(self, audio)
        calls.extend(zip(audio.clone(), heads["embed"].clone(), strict=True))
        return heads

    monkeypatch.setattr(VGGishEmbedder, "outputs", recorded)
    outcome = _run(pred, ref, tmp_path / "run", ("fd_vggish", "kad_vggish"), "fadtk")
    monkeypatch.undo()
    values = {m.name: m.value for m in outcome.results.metrics}
    gen_all, ref_all = [*PAIRED, GEN_ONLY], [*PAIRED, REF_ONLY]
    vgg = VGGishEmbedder.random(seed=0)
    expected = {
        **_outputs(pred, gen_all, "fadtk", vgg, RATE),
        **{f"ref/{i}": o for i, o in _outputs(ref, ref_all, "fadtk", vgg, RATE).items()},
    }
    audio = {i: _prepared(pred / f"{i}.wav", "fadtk", RATE) for i in gen_all}
    audio |= {f"ref/{i}": _prepared(ref / f"{i}.wav", "fadtk", RATE) for i in ref_all}
    seen: dict[str, np.ndarray] = {}
    for samples, embed in calls:
        key = min(audio, key=lambda k: float((audio[k] - samples).abs().max()))
        assert float((audio[key] - samples).abs().max()) < 1e-4 and key not in seen
        seen[key] = embed.double().numpy().reshape(-1, embed.shape[-1])
        assert seen[key] == pytest.approx(_rows(expected, [key]), rel=1e-4, abs=1e-4)
    assert set(seen) == set(audio)
    g = np.concatenate([seen[i] for i in gen_all]).astype(np.float16).astype(np.float64)
    r = np.concatenate([seen[f"ref/{i}"] for i in ref_all]).astype(np.float16).astype(np.float64)
    # FD of a few clips in 128 dimensions: scipy's sqrtm of the singular product agrees to ~1e-6
    assert values["fd_vggish"] == pytest.approx(_frechet(g, r), rel=1e-5)
    kad_rounded, kad_unrounded = (
        _kad(g, r),
        _kad(np.concatenate([seen[i] for i in gen_all]), np.concatenate([seen[f"ref/{i}"] for i in ref_all])),
    )
    assert values["kad_vggish"] == pytest.approx(kad_rounded, rel=1e-7, abs=1e-12)
    assert values["kad_vggish"] != pytest.approx(kad_unrounded, rel=1e-5)  # the float16 rounding is applied
    _check_coverage(outcome, {"fd_vggish", "kad_vggish"}, set())


def _kad(g: np.ndarray, r: np.ndarray) -> float:
    """kadtk's KAD: Gaussian kernel with bandwidth the median pairwise reference distance, unbiased MMD^2 x 100."""
    h = float(np.sort(cdist(r, r)[np.triu_indices(len(r), 1)])[(len(r) * (len(r) - 1) // 2 - 1) // 2])
    gamma = 1 / (2 * h * h + 1e-8)
    k = {
        key: np.exp(-gamma * cdist(a, b, "sqeuclidean"))
        for key, (a, b) in {"rr": (r, r), "gg": (g, g), "rg": (r, g)}.items()
    }
    m, n = len(r), len(g)
    kad = 100 * (
        (k["rr"].sum() - np.trace(k["rr"])) / (m * (m - 1))
        + (k["gg"].sum() - np.trace(k["gg"])) / (n * (n - 1))
        - 2 * k["rg"].mean()
    )
    return float(kad)


def test_agomni_offline_policy_uses_pairs_only(sets, tmp_path) -> None:
    pred, ref = sets
    outcome = _run(pred, ref, tmp_path / "run", ("fd_offline",), "agomni-offline")
    embedder = offline_embedder("mel-stats")

    def rows(folder: Path) -> np.ndarray:
        clips = [torch.from_numpy(_read(folder / f"{i}.wav").astype(np.float32)) for i in PAIRED]
        return np.stack([embedder.embed(c[None])[0].double().numpy() for c in clips])

    assert outcome.results.metrics[0].value == pytest.approx(_frechet(rows(pred), rows(ref)), rel=1e-6)
    _check_coverage(outcome, set(), {"fd_offline"})


def test_inception_score_end_to_end_is_far_from_its_trivial_value(tmp_path) -> None:
    """IS needs several clips per split to say anything: 40 generated clips, IS only (no references)."""
    pred = tmp_path / "pred"
    pred.mkdir()
    ids = [f"gen{i:02d}" for i in range(40)]
    for i, item in enumerate(ids):
        sf.write(pred / f"{item}.wav", _clip(1000 + i), RATE, subtype="PCM_16")
    outcome = evaluate(
        EvalRequest(
            pred_dir=pred, metrics=("is_panns",), random_weights=True, use_cache=False, progress=False
        )
    )
    panns = PannsCnn14Embedder.random("panns-cnn14-16k", seed=0)
    logits = {
        i: o["logits"][0].double().numpy()
        for i, o in _outputs(pred, ids, "av-benchmark", panns, RATE).items()
    }
    inception = _inception(logits)
    metric = outcome.results.metrics[0]
    assert metric.value == pytest.approx(inception, rel=1e-5) and metric.n == 40
    assert inception > 1.1  # 1 + 1e-9 with PyTorch's default initialisation
    assert [c.status for c in outcome.results.coverage] == ["ok"] * 40

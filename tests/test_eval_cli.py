"""`agomni eval` end to end on generated folders with the offline embedder: results.json checked by
`read_results` and every number compared with an independent computation (numpy/scipy on embeddings
computed directly by the embedder from independently decoded audio)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist

from agomni.cli import main
from agomni.evaluate.registry import METRICS, EmbedderSpec, MetricEntry
from agomni.metrics import offline_embedder
from agomni.results import read_results
from tests.eval_fixtures import read_clip, write_clip, write_sets

N = 10


def embed_folder(folder: Path, skip: tuple[str, ...] = ()) -> np.ndarray:
    """mel-stats embeddings [N, 128] float64 of every WAV in ``folder`` (soundfile decode)."""
    embedder = offline_embedder("mel-stats")
    files = [p for p in sorted(folder.glob("*.wav")) if p.stem not in skip]
    return np.stack([embedder.embed(read_clip(p)[None, :])[0].double().numpy() for p in files])


def fd_reference(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kad_reference(ref: np.ndarray, gen: np.ndarray) -> float:
    """kadtk: RBF kernel, bandwidth = torch.median(torch.pdist(ref)), unbiased MMD^2 x 100."""
    h = float(torch.median(torch.pdist(torch.from_numpy(ref))))
    gamma = 1 / (2 * h * h + 1e-8)
    k_rr, k_gg, k_rg = (
        np.exp(-gamma * cdist(a, b, "sqeuclidean")) for a, b in ((ref, ref), (gen, gen), (ref, gen))
    )
    m, n = len(ref), len(gen)
    return 100 * (
        (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1))
        + (k_gg.sum() - np.trace(k_gg)) / (n * (n - 1))
        - 2 * k_rg.mean()
    )


def eval_cli(tmp_path: Path, *args: str) -> int:
    return main(["eval", "--cache-dir", str(tmp_path / "cache"), "--no-progress", *args])


def test_end_to_end_offline_fd_and_kad(tmp_path, capsys) -> None:
    pred, ref = write_sets(tmp_path, N)
    out = tmp_path / "run"
    args = (
        "--pred",
        str(pred),
        "--ref",
        str(ref),
        "--metrics",
        "fd-mel-stats,kad-mel-stats",
        "--out",
        str(out),
    )
    assert eval_cli(tmp_path, *args) == 0
    printed = capsys.readouterr().out
    results = read_results(out / "results.json")

    x, y = embed_folder(ref), embed_folder(pred)
    fd, kad = results.metrics
    assert (fd.name, kad.name) == ("fd_offline", "kad_offline")  # canonical names for the alias spelling
    assert fd.value == pytest.approx(fd_reference(x, y), rel=1e-6)
    assert kad.value == pytest.approx(kad_reference(x, y), rel=1e-6, abs=1e-9)
    for metric in (fd, kad):
        assert (metric.profile, metric.n, metric.higher_is_better) == ("agomni-offline", N, False)
    assert (fd.unit, kad.unit) == ("FD", "KAD")
    assert [c.status for c in results.coverage] == ["ok"] * N

    provenance = results.provenance
    prep = provenance.preprocessing
    assert prep["comparable_with_published"] is False and not provenance.random_weights
    embedder = prep["embedders"]["mel-stats@agomni-offline"]
    assert embedder["comparable_with_published"] is False and embedder["checkpoint"] == "none"
    assert embedder["preprocessing"]["recipe"]["resampler"] == "torchaudio-sinc"
    assert prep["profiles"]["agomni-offline"]["kl_direction"] == "ref_gen"
    assert prep["metrics"]["fd_offline"]["n_reference_items"] == N
    assert provenance.seed == 0 and provenance.checkpoints == {}
    assert {"decode", "resample", "embed:mel-stats@agomni-offline", "metrics", "total"} <= set(
        provenance.timings
    )
    for text in (
        "fd_offline",
        "kad_offline",
        "lower is better",
        "agomni-offline",
        "FD",
        "KAD",
        "NOT comparable",
    ):
        assert text in printed
    assert f"{fd.value:.6g}" in printed


def test_suite_supplies_the_metrics(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, 4)
    assert (
        eval_cli(
            tmp_path, "--suite", "smoke", "--pred", str(pred), "--ref", str(ref), "--out", str(tmp_path / "r")
        )
        == 0
    )
    results = read_results(tmp_path / "r" / "results.json")
    assert [m.name for m in results.metrics] == ["fd_offline", "kad_offline"]
    assert results.run.suite == "smoke"


@pytest.mark.parametrize(
    ("problem", "expected"),
    [("unreadable", "corrupt"), ("silent", "exactly 0")],
)
def test_bad_file_is_an_error_naming_it_or_recorded_with_allow_missing(
    tmp_path, capsys, problem, expected
) -> None:
    pred, ref = write_sets(tmp_path, N)
    bad = pred / "item04.wav"
    if problem == "unreadable":
        bad.write_bytes(b"RIFF but not really a wave file at all")
    else:
        write_clip(bad, 0, noise=0.0)
        bad.write_bytes(bad.read_bytes()[:44] + bytes(len(bad.read_bytes()) - 44))  # all-zero samples
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(tmp_path / "run"))
    assert eval_cli(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and expected in err and "--allow-missing" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "results.json").exists()

    assert eval_cli(tmp_path, *args, "--allow-missing") == 0
    results = read_results(tmp_path / "run" / "results.json")
    status = {c.id: c for c in results.coverage}
    assert status["item04"].status == "error" and str(bad) in status["item04"].reason
    assert sum(c.status == "ok" for c in results.coverage) == N - 1
    fd = results.metrics[0]
    assert fd.n == N - 1  # the item contributes nothing, on either side
    skip = ("item04",)
    assert fd.value == pytest.approx(
        fd_reference(embed_folder(ref, skip), embed_folder(pred, skip)), rel=1e-6
    )


def test_too_short_clip_for_the_embedder_names_the_file(tmp_path, capsys) -> None:
    pred, ref = write_sets(tmp_path, 4)
    write_clip(pred / "item01.wav", 5, seconds=0.01)  # 160 samples < the 400-sample STFT window
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline")
    assert eval_cli(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert str(pred / "item01.wav") in err and "400" in err


def test_unknown_and_pending_metrics_are_clear_errors(tmp_path, capsys, monkeypatch) -> None:
    pred, ref = write_sets(tmp_path, 3)
    assert eval_cli(tmp_path, "--pred", str(pred), "--ref", str(ref), "--metrics", "fd_bogus") == 2
    err = capsys.readouterr().err
    assert (
        "unknown metric 'fd_bogus'" in err and "fd_offline (fd-mel-stats)" in err and "Traceback" not in err
    )

    absent = EmbedderSpec("vggish", "agomni.metrics.embedders.not_landed_yet", "vggish_embedder")
    monkeypatch.setitem(METRICS, "fd_vggish", MetricEntry("fd_vggish", "fd", absent, "av-benchmark"))
    assert eval_cli(tmp_path, "--pred", str(pred), "--ref", str(ref), "--metrics", "fd-vggish") == 3
    err = capsys.readouterr().err
    assert "not available in this version" in err and "not_landed_yet" in err and "Traceback" not in err

    assert eval_cli(tmp_path, "--pred", str(pred), "--ref", str(ref), "--metrics", "clap") == 2
    assert "pass --manifest (items with a 'text' field)" in capsys.readouterr().err


def test_registry_agrees_with_the_metric_catalogue() -> None:
    catalogue = json.loads((Path(__file__).parents[1] / "evaluation" / "metrics.json").read_text())
    for name, entry in METRICS.items():
        if name in catalogue:
            spec = catalogue[name]
            assert (entry.unit, entry.higher_is_better, entry.default_profile) == (
                spec["unit"],
                spec["higher_is_better"],
                spec["recipe"],
            ), name


KL_SPEC = EmbedderSpec("counting-mel-stats", "tests.eval_fixtures", "counting_embedder", weights=False)


@pytest.fixture
def kl_metric(monkeypatch):
    monkeypatch.setitem(METRICS, "kl_test", MetricEntry("kl_test", "kl", KL_SPEC, "av-benchmark"))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_kl_pairs_by_id_and_unpaired_ids_are_errors_or_missing(tmp_path, capsys, kl_metric) -> None:
    ids = [f"item{i:02d}" for i in range(N)]
    pred, ref = write_sets(tmp_path, N, pred_ids=[*ids[:-2], "extra00"])
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "kl_test", "--out", str(tmp_path / "run"))
    assert eval_cli(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert "'item08', 'item09'" in err and "'extra00'" in err and "--allow-missing" in err

    assert eval_cli(tmp_path, *args, "--allow-missing") == 0
    results = read_results(tmp_path / "run" / "results.json")
    status = {c.id: c.status for c in results.coverage}
    assert status == {
        **dict.fromkeys(ids[:-2], "ok"),
        "item08": "missing",
        "item09": "missing",
        "extra00": "missing",
    }

    from tests.eval_fixtures import CountingEmbedder

    projection = CountingEmbedder().projection.double().numpy()
    paired = ids[:-2]
    p_ref = softmax(embed_folder(ref, ("item08", "item09")) @ projection)
    p_gen = softmax(embed_folder(pred, ("extra00",)) @ projection)
    per_item = (p_ref * (np.log(p_ref) - np.log(p_gen))).sum(1)  # KL(ref || gen), av-benchmark direction
    kl = results.metrics[0]
    assert (kl.n, kl.unit, kl.profile) == (len(paired), "nats", "av-benchmark")
    assert kl.value == pytest.approx(per_item.mean(), rel=1e-6)
    assert [results.item_scores[i]["kl_test"] for i in paired] == pytest.approx(per_item, rel=1e-6)


def test_manifest_references_and_missing_outputs(tmp_path, capsys, kl_metric) -> None:
    pred, ref = write_sets(tmp_path, 4)
    (pred / "item03.wav").unlink()
    lines = [
        json.dumps(
            {"id": f"item{i:02d}", "task": "t2a", "text": "a tone", "reference_audio": f"ref/item{i:02d}.wav"}
        )
        for i in range(4)
    ]
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    args = (
        "--manifest",
        str(manifest),
        "--pred",
        str(pred),
        "--metrics",
        "fd_offline,kl_test",
        "--out",
        str(tmp_path / "run"),
    )
    assert eval_cli(tmp_path, *args) == 2
    assert "id 'item03': no output file" in capsys.readouterr().err
    assert eval_cli(tmp_path, *args, "--allow-missing") == 0
    results = read_results(tmp_path / "run" / "results.json")
    assert [c.status for c in results.coverage] == ["ok", "ok", "ok", "missing"]
    assert results.provenance.manifest_sha256 is not None
    skip = ("item03",)
    fd = results.metrics[0]
    assert fd.n == 3
    assert fd.value == pytest.approx(fd_reference(embed_folder(ref, skip), embed_folder(pred)), rel=1e-6)


def test_frame_level_embeddings_are_pooled_over_all_frames(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, 4)
    args = (
        "--pred",
        str(pred),
        "--ref",
        str(ref),
        "--metrics",
        "fd-mel-frames",
        "--out",
        str(tmp_path / "run"),
    )
    assert eval_cli(tmp_path, *args) == 0
    fd = read_results(tmp_path / "run" / "results.json").metrics[0]
    embedder = offline_embedder("mel-frames")

    def frames(folder: Path) -> np.ndarray:
        return np.concatenate(
            [embedder.embed(read_clip(p)[None, :])[0].double().numpy() for p in sorted(folder.iterdir())]
        )

    x, y = frames(ref), frames(pred)
    assert (fd.name, fd.n) == ("fd_mel_frames", 4)
    assert fd.value == pytest.approx(fd_reference(x, y), rel=1e-6)


def test_kad_row_bound_is_a_clear_error(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("agomni.metrics.kad.MAX_ROWS", 5)
    pred, ref = write_sets(tmp_path, 8)
    assert eval_cli(tmp_path, "--pred", str(pred), "--ref", str(ref), "--metrics", "kad_offline") == 2
    assert "bounded to 5 rows" in capsys.readouterr().err

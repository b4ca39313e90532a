"""SyncNet, MFCC and LSE: equal to the syncnet-python package with the same random weights.

The reference (`syncnet_python.SyncNetInstance.evaluate`) reads a folder of JPEG face crops and a 16 kHz
int16 WAV; both sides read the same files here. Its per-offset distances are captured from its own
``calc_pdist``; the per-offset mean is its ``torch.mean(torch.stack(dists, 1), 1)``.
"""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.io import wavfile

from agomni.metrics.av.mfcc import syncnet_mfcc, to_int16_values
from agomni.metrics.av.syncnet import (
    SyncNet,
    lse_scores,
    offset_distances,
    syncnet_features,
    usable_windows,
)
from tests.metrics.talking_video import speech_like, syllable_envelope, talking_frames

syncnet_python = pytest.importorskip("syncnet_python")
python_speech_features = pytest.importorskip("python_speech_features")
from syncnet_python import SyncNetInstance as reference_instance_module  # noqa: E402
from syncnet_python.SyncNetModel import S as ReferenceSyncNet  # noqa: E402

reference_instance = __import__("syncnet_python.SyncNetInstance", fromlist=["calc_pdist"])


def random_syncnet_state(seed: int) -> dict[str, torch.Tensor]:
    """The reference class's own initialisation under `seed`, plus random BatchNorm statistics."""
    torch.manual_seed(seed)
    state = ReferenceSyncNet().state_dict()
    generator = torch.Generator().manual_seed(seed + 1)
    for key, value in state.items():
        if key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn(value.shape, generator=generator)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
    return state


def test_mfcc_equals_python_speech_features() -> None:
    rng = np.random.default_rng(3)
    for samples in (1, 399, 400, 401, 16000, 16161):
        pcm = (rng.standard_normal(samples) * 4000).astype(np.int16)
        expected = np.stack([np.array(c) for c in zip(*python_speech_features.mfcc(pcm, 16000), strict=True)])
        np.testing.assert_allclose(syncnet_mfcc(pcm), expected, rtol=1e-12, atol=1e-9)
    silent = np.zeros(1600, np.int16)
    expected = np.stack([np.array(c) for c in zip(*python_speech_features.mfcc(silent, 16000), strict=True)])
    np.testing.assert_allclose(syncnet_mfcc(silent), expected, rtol=1e-12, atol=1e-9)


def test_int16_values_round_and_clip_like_pcm_s16le() -> None:
    values = to_int16_values(np.array([0.0, 0.5, -1.0, 1.0, 1.5, 1 / 65536, 3 / 65536]))
    np.testing.assert_array_equal(values, [0, 16384, -32768, 32767, 32767, 0, 2])


@pytest.fixture(scope="module")
def crop_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'talking-shape' face-crop folder as syncnet_python's evaluate reads it: 224 x 224 JPEGs + audio.wav."""
    folder = tmp_path_factory.mktemp("syncnet_crops")
    envelope = syllable_envelope(2.0, seed=5)
    frames = talking_frames(envelope, 25, (224, 224), 150)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index + 1:06d}.jpg"), frame[..., ::-1])
    wavfile.write(folder / "audio.wav", 16000, to_int16_values(speech_like(envelope)))
    return folder


def _ours(folder: Path, net: SyncNet) -> tuple[torch.Tensor, int]:
    images = np.stack([cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))])  # BGR, as the reference
    rate, pcm = wavfile.read(folder / "audio.wav")
    assert rate == 16000
    windows = usable_windows(len(images), len(pcm))
    faces = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    lip, aud = syncnet_features(net, faces, torch.from_numpy(syncnet_mfcc(pcm)).float(), windows)
    return offset_distances(lip, aud), windows


@pytest.mark.slow
def test_distance_curve_equals_syncnet_python(crop_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = random_syncnet_state(0)
    reference = ReferenceSyncNet()
    reference.load_state_dict(state)
    captured: list[list[torch.Tensor]] = []
    original = reference_instance.calc_pdist

    def recording(feat1: torch.Tensor, feat2: torch.Tensor, vshift: int = 10) -> list[torch.Tensor]:
        captured.append(original(feat1, feat2, vshift=vshift))
        return captured[-1]

    monkeypatch.setattr(reference_instance, "calc_pdist", recording)
    options = types.SimpleNamespace(tmp_dir=str(crop_folder), batch_size=20, vshift=15)
    offset, conf, min_dist = reference_instance_module(net=reference, device="cpu").evaluate(options)
    expected_curve = torch.mean(torch.stack(captured[0], 1), 1)

    ours = SyncNet()
    ours.load_state_dict(state)
    ours.eval()
    table, windows = _ours(crop_folder, ours)
    assert table.shape == (len(captured[0]), 31) and windows == 45  # 50 frames -> 50 - 5 windows
    curve = table.mean(dim=0)
    scale = float(expected_curve.abs().max())
    assert float((curve - expected_curve).abs().max()) <= 1e-4 * max(1.0, scale)
    assert float(expected_curve.max() - expected_curve.min()) > 1e-3 * scale  # the curve is not flat
    scores = lse_scores(curve, windows)
    assert scores.offset_frames == offset
    assert scores.lse_d == pytest.approx(min_dist, rel=1e-5)
    assert scores.lse_c == pytest.approx(conf, rel=1e-4, abs=1e-4 * scale)


def test_lse_definitions_on_a_planted_curve() -> None:
    curve = torch.full((31,), 9.0)
    curve[:10] = torch.linspace(12.0, 10.0, 10)
    curve[18] = 5.5  # the minimum: offset 15 - 18 = -3
    curve[19] = 7.0
    scores = lse_scores(curve, windows=40)
    ordered = np.sort(curve.numpy().astype(np.float64))
    assert scores.lse_d == pytest.approx(5.5)
    assert scores.lse_c == pytest.approx(ordered[15] - 5.5)  # median of 31 values is the 16th smallest
    assert scores.lse_c == pytest.approx(9.0 - 5.5)
    assert scores.offset_frames == -3
    with pytest.raises(ValueError, match="31 mean distances"):
        lse_scores(torch.ones(30), windows=1)


def test_distance_table_by_hand() -> None:
    lip = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    aud = torch.tensor([[0.0, 1.0], [1.0, 1.0], [5.0, 0.0]])
    table = offset_distances(lip, aud, vshift=1)
    # entry [i, j] = |lip_i - aud_{i + j - 1}|, zero vector outside (plus pairwise_distance's eps 1e-6)
    expected = torch.tensor(
        [
            [0.0, 1.0, np.sqrt(2.0)],
            [np.sqrt(2.0), 1.0, 4.0],
            [np.sqrt(2.0), 3.0, 2.0],
        ]
    )
    torch.testing.assert_close(table, expected.float(), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_shifting_the_audio_by_k_frames_shifts_the_distance_table_by_k(crop_folder: Path) -> None:
    """By construction (any weights): delaying the audio by k frames (640 k samples of leading silence)
    delays every MFCC column by 4 k, so audio window m becomes window m - k and the distance for offset
    j becomes the old one for offset j - k. Whether the *minimum* lands on the true offset needs trained
    weights (random weights have no preference for the aligned offset), so only the table is compared."""
    torch.manual_seed(1)
    net = SyncNet().eval()
    images = np.stack([cv2.imread(str(p)) for p in sorted(crop_folder.glob("*.jpg"))])
    faces = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    _, pcm = wavfile.read(crop_folder / "audio.wav")
    windows = usable_windows(len(images), len(pcm))
    mfcc = torch.from_numpy(syncnet_mfcc(pcm)).float()
    lip, aud = syncnet_features(net, faces, mfcc, windows)
    base = offset_distances(lip, aud)
    for k in (1, 3):
        delayed = np.concatenate([np.zeros(640 * k, np.int16), pcm])
        lip_k, aud_k = syncnet_features(net, faces, torch.from_numpy(syncnet_mfcc(delayed)).float(), windows)
        torch.testing.assert_close(lip_k, lip)
        torch.testing.assert_close(aud_k[k:], aud[: windows - k], rtol=1e-5, atol=1e-4)
        shifted = offset_distances(lip_k, aud_k)
        # rows i, offsets j with audio window i + j - 15 - k inside [0, windows - k): old offset j - k
        for i in range(windows):
            for j in range(k, 31):
                m = i + j - 15 - k
                if 0 <= m < windows - k:
                    assert abs(float(shifted[i, j] - base[i, j - k])) <= 1e-4 * float(base.abs().max())


def test_planted_curve_shift_moves_the_offset_by_k() -> None:
    """The offset read-out itself: a curve with a clear minimum moved by k offsets reports offset - k."""
    curve = 10.0 + torch.linspace(-1, 1, 31) ** 2
    curve[15 + 2] -= 3.0
    base = lse_scores(curve, windows=10).offset_frames
    for k in (1, 4, -3):
        assert lse_scores(torch.roll(curve, k), windows=10).offset_frames == base - k

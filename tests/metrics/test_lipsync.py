"""The LSE pipeline on generated talking-face files as users have them: 25 and 30 fps, portrait, 2 s, no
audio track, corrupt. Each gives a per-item result or a per-item error, never an exception.

SyncNet has random weights here (tests only: the numbers are not lip-sync measurements) and the faces
are found by the Haar fallback (S3FD with random weights finds nothing meaningful).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agomni.errors import MetricInputError
from agomni.metrics.av.faces import HaarDetector, TrackingConfig
from agomni.metrics.av.lipsync import LipSyncItem, LipSyncScorer
from agomni.metrics.av.syncnet import SyncNet
from agomni.metrics.base import MetricSpec
from agomni.metrics.item_mean import ItemMean
from tests.metrics.talking_video import speech_like, syllable_envelope, talking_frames, write_talking_video

SHORT_TRACKS = TrackingConfig(min_track=30)


def _scorer(tracking: TrackingConfig) -> LipSyncScorer:
    torch.manual_seed(0)
    return LipSyncScorer(SyncNet(), HaarDetector(), random_weights=True, tracking=tracking)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lipsync_videos")
    envelope = syllable_envelope(2.0, seed=11)
    audio = speech_like(envelope)
    out = {
        "25fps": write_talking_video(
            folder / "25fps.mp4", talking_frames(envelope, 25, (256, 256), 140), 25, audio
        ),
        "30fps": write_talking_video(
            folder / "30fps.mp4", talking_frames(envelope, 30, (256, 256), 140), 30, audio
        ),
        "portrait": write_talking_video(
            folder / "portrait.mp4", talking_frames(envelope, 25, (320, 180), 130), 25, audio
        ),
        "no_audio": write_talking_video(
            folder / "no_audio.mp4", talking_frames(envelope, 25, (256, 256), 140), 25, None
        ),
    }
    data = out["25fps"].read_bytes()
    (folder / "corrupt.mp4").write_bytes(
        data[:64] + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8))
    )
    out["corrupt"] = folder / "corrupt.mp4"
    return out


def _check_scored(item: LipSyncItem) -> None:
    assert item.error is None, item.error
    assert len(item.tracks) == 1
    track = item.tracks[0]
    curve = np.asarray(track.mean_distances)
    assert curve.shape == (31,)
    assert item.lse_d == pytest.approx(curve.min())
    assert item.lse_c == pytest.approx(np.median(curve) - curve.min())
    assert item.offset_frames == 15 - int(curve.argmin())
    assert item.frames_used == track.windows == min(track.last_frame - track.first_frame + 1, 50) - 5
    assert 0.6 < item.face_track_coverage <= 1.0
    assert any("random weights" in note for note in item.notes)


@pytest.mark.slow
def test_25fps_30fps_and_portrait_are_scored(videos: dict[str, Path]) -> None:
    scorer = _scorer(SHORT_TRACKS)
    at25 = scorer.score(videos["25fps"], "a")
    _check_scored(at25)
    assert at25.source_fps == 25 and not at25.resampled_to_25fps and at25.video_frames == 50

    at30 = scorer.score(videos["30fps"], "b")
    _check_scored(at30)
    assert at30.source_fps == 30 and at30.resampled_to_25fps and at30.video_frames == 50

    portrait = scorer.score(videos["portrait"], "c")
    _check_scored(portrait)


def test_no_audio_short_and_corrupt_are_item_errors(videos: dict[str, Path]) -> None:
    scorer = _scorer(TrackingConfig())  # the reference's minimum: more than 100 detections (4 s)
    no_audio = scorer.score(videos["no_audio"], "silent-film")
    assert no_audio.error is not None and "audio" in no_audio.error and no_audio.lse_c is None

    short = scorer.score(videos["25fps"], "two-seconds")
    assert short.error is not None and "not more than the minimum 100 detections" in short.error
    assert short.rejected_tracks and short.video_frames == 50 and short.lse_d is None

    corrupt = scorer.score(videos["corrupt"], "broken")
    assert corrupt.error is not None and "corrupt.mp4" in corrupt.error

    missing = scorer.score(videos["corrupt"].with_name("absent.mp4"), "absent")
    assert missing.error is not None and "does not exist" in missing.error


def test_no_face_is_an_item_error(tmp_path: Path) -> None:
    envelope = syllable_envelope(1.0, seed=2)
    blank = np.full((25, 128, 128, 3), 120, np.uint8)
    path = write_talking_video(tmp_path / "blank.mp4", blank, 25, speech_like(envelope))
    item = _scorer(SHORT_TRACKS).score(path, "blank")
    assert item.error == (
        "no face found in any of the 25 frames "
        "(detector opencv-haar-frontalface-default (offline fallback, not the reference S3FD))"
    )


def test_item_mean_keeps_errors_and_rejects_duplicates() -> None:
    spec = MetricSpec(unit="SyncNet distance", higher_is_better=False, description="")
    metric = ItemMean("lse_d", spec, "syncnet", {"random_weights": True})
    metric.update([6.0, 8.0], ids=["a", "b"])
    metric.add_error("c", "no face found")
    other = ItemMean("lse_d", spec, "syncnet", {"random_weights": True})
    other.update([10.0], ids=["d"])
    other.add_error("e", "no audio stream")
    metric.merge(other)
    result = metric.compute()
    assert result.value == pytest.approx(8.0)
    assert (result.unit, result.higher_is_better) == ("SyncNet distance", False)
    assert result.details["items_scored"] == 3 and result.details["items_failed"] == 2
    assert result.details["errors"][0] == {"id": "c", "reason": "no face found", "side": "generated"}
    assert result.details["random_weights"] is True
    with pytest.raises(MetricInputError, match="added twice"):
        metric.update([1.0], ids=["a"])
    with pytest.raises(MetricInputError, match="already added"):
        metric.add_error("b", "late")
    with pytest.raises(MetricInputError, match="one item id per value"):
        metric.update([1.0, 2.0], ids=["x"])
    empty = ItemMean("lse_c", spec, "syncnet", {})
    empty.add_error("x", "no audio stream")
    with pytest.raises(MetricInputError, match=r"none of 1 item\(s\) could be scored \(generated side\)"):
        empty.compute()


@pytest.mark.slow
def test_two_faces_are_scored_per_track_and_noted(tmp_path: Path) -> None:
    envelope = syllable_envelope(2.0, seed=3)
    one = talking_frames(envelope, 25, (256, 256), 140)
    two = np.concatenate([one, one[:, :, ::-1]], axis=2)  # side by side (the second mirrored)
    path = write_talking_video(tmp_path / "two.mp4", two, 25, speech_like(envelope))
    item = _scorer(SHORT_TRACKS).score(path, "two-faces")
    assert item.error is None, item.error
    assert len(item.tracks) == 2
    assert "2 face tracks: LSE-C / LSE-D are their mean" in item.notes
    assert item.lse_d == pytest.approx(np.mean([t.lse_d for t in item.tracks]))
    assert item.lse_c == pytest.approx(np.mean([t.lse_c for t in item.tracks]))
    assert item.frames_used == sum(t.windows for t in item.tracks)
    assert 0.6 < item.face_track_coverage <= 1.0  # frames inside any track, not counted twice

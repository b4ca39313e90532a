"""Face detection, tracking and crops against syncnet-python (same random S3FD weights) and by hand."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
import torch

from agomni.metrics.av.faces import HaarDetector, TrackingConfig, crop_video, track_shot
from agomni.metrics.av.s3fd import S3FD, S3FDNet
from tests.metrics.talking_video import draw_face

pytest.importorskip("syncnet_python")
from syncnet_python.detectors.s3fd import S3FD as ReferenceS3FD
from syncnet_python.detectors.s3fd.nets import S3FDNet as ReferenceS3FDNet
from syncnet_python.syncnet_pipeline import PipelineConfig, SyncNetPipeline


def test_s3fd_boxes_equal_syncnet_python() -> None:
    torch.manual_seed(0)
    reference = ReferenceS3FDNet(device="cpu")
    ours = S3FDNet()
    ours.load_state_dict(reference.state_dict(), strict=True)
    image = draw_face(360, 480, 0.5, (240, 180), 200)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    for threshold in (0.45, 0.5):  # random weights score about 0.3-0.7: the reference's 0.9 keeps nothing
        expected = ReferenceS3FD(reference, device="cpu").detect_faces(
            noisy, conf_th=threshold, scales=[0.25]
        )
        found = S3FD(ours, threshold=threshold).detect(noisy)
        assert expected.shape[0] > 5
        assert found.shape == expected.shape
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-3)


def _detections(rng: np.random.Generator) -> list[np.ndarray]:
    """Two faces: A steady over frames 0-59 with gaps; B from frame 20 to 44, then a jump (new track)."""
    frames: list[np.ndarray] = []
    for frame in range(70):
        boxes = []
        if frame < 60 and frame % 7 != 3:
            x = 50 + frame * 0.5 + rng.normal(0, 1)
            boxes.append([x, 40.0, x + 130, 170.0, 0.99])
        if 20 <= frame < 45:
            boxes.append([300.0, 60.0, 420.0, 180.0, 0.95])
        if 45 <= frame < 70:
            boxes.append([200.0, 200.0, 260.0, 260.0, 0.93])
        frames.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 5))
    return frames


def test_tracking_equals_syncnet_python() -> None:
    detections = _detections(np.random.default_rng(1))
    config = TrackingConfig(min_track=20, num_failed_det=25, min_face_size=100)
    ours = track_shot([d.copy() for d in detections], config)
    reference_self = types.SimpleNamespace(
        cfg=PipelineConfig(min_track=20, num_failed_det=25, min_face_size=100), _iou=SyncNetPipeline._iou
    )
    as_dicts = [
        [{"frame": f, "bbox": list(b[:4]), "conf": b[4]} for b in boxes] for f, boxes in enumerate(detections)
    ]
    expected = SyncNetPipeline._track(reference_self, as_dicts)
    assert len(ours.tracks) == len(expected) == 2
    for mine, theirs in zip(ours.tracks, expected, strict=True):
        np.testing.assert_array_equal(mine.frames, theirs["frame"])
        np.testing.assert_allclose(mine.boxes, theirs["bbox"], rtol=0, atol=1e-9)
    # the third face (frames 45-69) is too small: the reference drops it silently, here it has a reason
    assert len(ours.rejected) == 1 and "mean face size 60 px <= 100 px" in ours.rejected[0]


def test_short_track_is_reported_with_its_reason() -> None:
    detections = [np.array([[10.0, 10.0, 150.0, 150.0, 0.99]]) for _ in range(50)]
    result = track_shot(detections)  # the reference's defaults: more than 100 detections needed
    assert result.tracks == []
    assert result.rejected == [
        "face track at frames 0-49 (50 detections): not more than the minimum 100 detections (4.0 s at 25 fps)"
    ]


def test_crop_by_hand() -> None:
    frames = np.random.default_rng(2).integers(0, 255, (20, 300, 320, 3), dtype=np.uint8)
    boxes = np.tile([100.0, 80.0, 200.0, 180.0], (20, 1))
    track = types.SimpleNamespace(frames=np.arange(20), boxes=boxes)
    crops = crop_video(frames, track)
    # half size s = 50, pad int(1.8 s) = 90: rows 130 - 50 .. 130 + 90, columns 150 - 70 .. 150 + 70
    for k in (0, 19):
        np.testing.assert_array_equal(crops[k], cv2.resize(frames[k, 80:220, 80:220], (224, 224)))


def test_crop_pads_with_grey_110_at_the_border() -> None:
    frames = np.zeros((13, 100, 100, 3), dtype=np.uint8)
    track = types.SimpleNamespace(frames=np.arange(13), boxes=np.tile([0.0, 0.0, 60.0, 60.0], (13, 1)))
    crops = crop_video(frames, track)
    assert crops.shape == (13, 224, 224, 3)
    assert (crops[0, :5, :5] == 110).all() and (crops[0, -5:, -5:] == 0).all()


def test_haar_fallback_finds_the_drawn_face() -> None:
    detector = HaarDetector()
    boxes = detector.detect(draw_face(256, 256, 0.3, (128, 128), 140))
    assert boxes.shape == (1, 5)
    x1, y1, x2, y2, _ = boxes[0]
    assert 40 < (x1 + x2) / 2 < 216 and 40 < (y1 + y2) / 2 < 216 and x2 - x1 > 100
    assert detector.detect(np.full((256, 256, 3), 120, np.uint8)).shape == (0, 5)
    assert "fallback" in detector.name

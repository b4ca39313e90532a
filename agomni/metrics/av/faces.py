"""Face detection, tracking and 224 x 224 face crops for SyncNet, as syncnet_python's ``run_pipeline.py``.

Detectors (`FaceDetector`): `agomni.metrics.av.s3fd.S3FD` (the reference: ``sfd_face.pth``, frames scaled
by 0.25, score > 0.9) and ``HaarDetector``, the labelled offline fallback (OpenCV's bundled
``haarcascade_frontalface_default.xml``; its boxes differ from S3FD's, so results carry its name).

Tracking (``track_shot``): detections are chained greedily frame by frame; a detection joins the open
track when it is at most ``num_failed_det`` (25) frames after the track's last one and their IoU > 0.5.
A track is kept when it has more than ``min_track`` detections (100: 4 s at 25 fps) and its mean box width
or height (after linear interpolation over missed frames) exceeds ``min_face_size`` (100 px). The
reference drops the others silently; here every rejected track is returned with its reason.

Crops (``crop_video``): box half-size s = max(w, h) / 2 and centre, each median-filtered over 13 frames;
the frame is padded by int(1.8 s) with grey 110; rows my - s .. my + 1.8 s, columns mx - 1.4 s ..
mx + 1.4 s (crop scale 0.4), resized to 224 x 224 with ``cv2.resize`` (bilinear), BGR.

Shot detection: the reference splits the video into shots with PySceneDetect first; here the whole clip
is one shot (a generated clip has no cuts), recorded as ``shots: "whole clip"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from scipy.interpolate import interp1d
from scipy.signal import medfilt

CROP_SIZE = 224
CROP_SCALE = 0.4
PAD_VALUE = 110
IOU_THRESHOLD = 0.5
SMOOTHING = 13
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


class FaceDetector(Protocol):
    """`name` labels results; `detect(frame_rgb uint8 (H, W, 3))` -> (n, 5) [x1, y1, x2, y2, score] px."""

    name: str

    def detect(self, frame: np.ndarray) -> np.ndarray: ...


class HaarDetector:
    """Offline fallback: OpenCV's frontal-face Haar cascade (ships inside opencv), scale factor 1.1,
    5 neighbours, faces of at least `min_size` px; score 1 for every box."""

    name = "opencv-haar-frontalface-default (offline fallback, not the reference S3FD)"

    def __init__(self, *, min_size: int = 60):
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_CASCADE)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV could not load {HAAR_CASCADE} from {cv2.data.haarcascades}")
        self.min_size = min_size

    def detect(self, frame: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size)
        )
        boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], np.ones((len(boxes), 1))], axis=1)


@dataclass(frozen=True)
class TrackingConfig:
    """syncnet_python run_pipeline defaults: min_track 100 detections, num_failed_det 25, min_face_size 100 px."""

    min_track: int = 100
    num_failed_det: int = 25
    min_face_size: float = 100.0


REFERENCE_TRACKING = TrackingConfig()


@dataclass
class FaceTrack:
    """Frames (consecutive indices) and interpolated boxes (frames, 4) x1 y1 x2 y2 of one face."""

    frames: np.ndarray
    boxes: np.ndarray
    detections: int


@dataclass
class Tracking:
    """Accepted tracks and, for every rejected one, a reason (frames, detections, size)."""

    tracks: list[FaceTrack] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def track_shot(detections: list[np.ndarray], config: TrackingConfig = REFERENCE_TRACKING) -> Tracking:
    """Chain per-frame boxes ((n, 5) arrays, frame index = list index) into face tracks (module docstring)."""
    pending = [[(frame, tuple(box[:4])) for box in boxes] for frame, boxes in enumerate(detections)]
    result = Tracking()
    while True:
        track: list[tuple[int, tuple[float, ...]]] = []
        for faces in pending:
            # iterates the live list like the reference: the face after a removed one waits for the next track
            for face in faces:
                if not track:
                    track.append(face)
                    faces.remove(face)
                elif face[0] - track[-1][0] <= config.num_failed_det:
                    if iou(np.asarray(face[1]), np.asarray(track[-1][1])) > IOU_THRESHOLD:
                        track.append(face)
                        faces.remove(face)
                else:
                    break
        if not track:
            return result
        frames = np.array([f for f, _ in track])
        boxes = np.array([b for _, b in track])
        span = np.arange(frames[0], frames[-1] + 1)
        filled = np.stack([interp1d(frames, boxes[:, k])(span) for k in range(4)], axis=1)
        size = max(np.mean(filled[:, 2] - filled[:, 0]), np.mean(filled[:, 3] - filled[:, 1]))
        where = f"face track at frames {frames[0]}-{frames[-1]} ({len(track)} detections)"
        if len(track) <= config.min_track:
            result.rejected.append(
                f"{where}: not more than the minimum {config.min_track} detections "
                f"({config.min_track / 25:.1f} s at 25 fps)"
            )
        elif size <= config.min_face_size:
            result.rejected.append(f"{where}: mean face size {size:.0f} px <= {config.min_face_size:.0f} px")
        else:
            result.tracks.append(FaceTrack(frames=span, boxes=filled, detections=len(track)))


def crop_video(frames_bgr: np.ndarray, track: FaceTrack) -> np.ndarray:
    """(len(track.frames), 224, 224, 3) uint8 BGR face crops of `frames_bgr` (T, H, W, 3) (module docstring)."""
    boxes = track.boxes
    half = medfilt(np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2, SMOOTHING)
    cy = medfilt((boxes[:, 1] + boxes[:, 3]) / 2, SMOOTHING)
    cx = medfilt((boxes[:, 0] + boxes[:, 2]) / 2, SMOOTHING)
    crops = np.empty((len(track.frames), CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    for k, frame in enumerate(track.frames):
        s = half[k]
        pad = int(s * (1 + 2 * CROP_SCALE))
        image = np.pad(frames_bgr[frame], ((pad, pad), (pad, pad), (0, 0)), constant_values=PAD_VALUE)
        my, mx = cy[k] + pad, cx[k] + pad
        face = image[
            int(my - s) : int(my + s * (1 + 2 * CROP_SCALE)),
            int(mx - s * (1 + CROP_SCALE)) : int(mx + s * (1 + CROP_SCALE)),
        ]
        crops[k] = cv2.resize(face, (CROP_SIZE, CROP_SIZE))
    return crops

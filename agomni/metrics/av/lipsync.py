"""LSE-C / LSE-D of one talking-face video: decode, 25 fps, face tracks, crops, SyncNet, scores.

Recipe: syncnet_python ``run_pipeline.py`` + ``run_syncnet.py`` as Wav2Lip's ``evaluation/scores_LSE``
runs them (see `agomni.metrics.av.syncnet`, `.faces`, `.mfcc`):

1. Video frames decoded with PyAV and converted to 25 fps with FFmpeg's ``fps`` filter (the reference's
   ``ffmpeg -r 25``); the source rate and the conversion are recorded per item.
2. Audio (the video's own track, or a separate file) mono, resampled to 16 kHz, quantised to int16 values
   as the reference's ``pcm_s16le`` WAV.
3. Faces detected on every frame, chained into tracks; each accepted track is cropped and its audio
   (track frames f0 .. f1 -> samples 640 f0 .. 640 (f1 + 1)) scored with SyncNet.
4. Per item: LSE-C, LSE-D as the mean over its accepted tracks (Wav2Lip's script prints one line per track
   and averages the lines), the AV offset of its longest track, windows (frames) used, face-track coverage
   (share of the 25 fps frames inside accepted tracks), every rejected track with its reason.

Not reproduced, on purpose: the reference's lossy intermediate files (JPEG frames, XVID crops) and its
PySceneDetect shot split (the whole clip is one shot here). An item without an audio stream, without a
usable face track or unreadable becomes a per-item error with the reason; it is never dropped silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from agomni import weights
from agomni.metrics.av.faces import (
    REFERENCE_TRACKING,
    FaceDetector,
    HaarDetector,
    TrackingConfig,
    crop_video,
    track_shot,
)
from agomni.metrics.av.media import AVScorer, ItemResult, MediaRecipe, Pair
from agomni.metrics.av.mfcc import SAMPLE_RATE, syncnet_mfcc, to_int16_values
from agomni.metrics.av.s3fd import S3FD, S3FDNet
from agomni.metrics.av.syncnet import (
    BATCH_WINDOWS,
    SAMPLES_PER_FRAME,
    VSHIFT,
    SyncNet,
    lse_scores,
    offset_distances,
    syncnet_features,
    usable_windows,
)

VIDEO_FPS = 25
SYNCNET_WEIGHTS = "syncnet-v2"
S3FD_WEIGHTS = "s3fd-face"
RECIPE = "syncnet"
MEDIA = MediaRecipe(fps=VIDEO_FPS, sample_rate=SAMPLE_RATE)


@dataclass
class TrackScore:
    """One face track: frames first..last at 25 fps, detections, windows scored, LSE-D, LSE-C, offset
    (video frames; positive = audio lags), the per-offset mean distance curve (offsets -15..+15)."""

    first_frame: int
    last_frame: int
    detections: int
    windows: int
    lse_d: float
    lse_c: float
    offset_frames: int
    mean_distances: tuple[float, ...]


@dataclass
class LipSyncItem(ItemResult):
    """Per-item LSE result. `error` is None when scored; otherwise the reason and no scores."""

    lse_c: float | None = None
    lse_d: float | None = None
    offset_frames: int | None = None
    frames_used: int = 0
    video_frames: int = 0
    face_track_coverage: float = 0.0
    tracks: list[TrackScore] = field(default_factory=list)
    rejected_tracks: list[str] = field(default_factory=list)
    source_fps: float | None = None
    resampled_to_25fps: bool = False


class LipSyncScorer(AVScorer[LipSyncItem]):
    """Scores videos with one SyncNet and one face detector (see the module docstring).

    `random_weights` is True when SyncNet (or the detector) is untrained; every item then carries a note,
    and such numbers are for tests and latency only.
    """

    media, item_type, recipe = MEDIA, LipSyncItem, RECIPE

    def __init__(
        self,
        syncnet: SyncNet,
        detector: FaceDetector,
        *,
        random_weights: bool,
        tracking: TrackingConfig = REFERENCE_TRACKING,
        vshift: int = VSHIFT,
        batch_size: int = BATCH_WINDOWS,
        device: str | torch.device = "cpu",
    ):
        self.syncnet = syncnet.eval().to(device)
        self.detector = detector
        self.random_weights = random_weights
        self.tracking = tracking
        self.vshift = vshift
        self.batch_size = batch_size

    @classmethod
    def from_registry(
        cls, *, detector: str = "s3fd", device: str | torch.device = "cpu", **options: Any
    ) -> LipSyncScorer:
        """SyncNet ``syncnet_v2.model`` and the detector ("s3fd": ``sfd_face.pth``; "haar": the offline
        fallback) from the weights registry (OfflineError when offline and not cached)."""
        net = SyncNet()
        weights.load_strict(
            net,
            weights.load_entry_state_dict(SYNCNET_WEIGHTS),
            where=SYNCNET_WEIGHTS,
            optional_suffixes=("num_batches_tracked",),
        )
        if detector == "haar":
            face_detector: FaceDetector = HaarDetector()
        else:
            s3fd = S3FDNet()
            weights.load_strict(s3fd, weights.load_entry_state_dict(S3FD_WEIGHTS), where=S3FD_WEIGHTS)
            face_detector = S3FD(s3fd, device=str(device))
        return cls(net, face_detector, random_weights=False, device=device, **options)

    def config(self) -> dict[str, Any]:
        """Everything that determines the numbers (for provenance and cache keys)."""
        return self.describe(
            vshift=self.vshift,
            detector=self.detector.name,
            tracking=asdict(self.tracking),
            shots="whole clip",
        )

    def score_pair(self, item: LipSyncItem, pair: Pair) -> None:
        item.video_frames = pair.frames.shape[0]
        item.source_fps = pair.video.source_fps
        item.resampled_to_25fps = item.source_fps is None or abs(item.source_fps - VIDEO_FPS) > 1e-6
        self._score_tracks(item, pair.frames, to_int16_values(pair.waveform[0].numpy()))

    def _score_tracks(self, item: LipSyncItem, frames: torch.Tensor, pcm: np.ndarray) -> None:
        rgb = frames.permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)
        detections = [self.detector.detect(frame) for frame in rgb]
        if not any(len(d) for d in detections):
            item.error = f"no face found in any of the {len(rgb)} frames (detector {self.detector.name})"
            item.error_side = "video"
            return
        tracking = track_shot(detections, self.tracking)
        item.rejected_tracks = list(tracking.rejected)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        for track in tracking.tracks:
            start, end = track.frames[0] * SAMPLES_PER_FRAME, (track.frames[-1] + 1) * SAMPLES_PER_FRAME
            segment = pcm[start:end]
            windows = usable_windows(len(track.frames), len(segment))
            where = f"face track at frames {track.frames[0]}-{track.frames[-1]}"
            if windows < 1:
                item.rejected_tracks.append(f"{where}: {len(segment)} audio samples leave no 5-frame window")
                continue
            crops = torch.from_numpy(crop_video(bgr, track)).permute(0, 3, 1, 2).float()
            lip, aud = syncnet_features(
                self.syncnet, crops, torch.from_numpy(syncnet_mfcc(segment)).float(), windows, self.batch_size
            )
            scores = lse_scores(offset_distances(lip, aud, self.vshift).mean(dim=0), windows, self.vshift)
            first, last = int(track.frames[0]), int(track.frames[-1])
            item.tracks.append(TrackScore(first, last, track.detections, **asdict(scores)))
        covered = len({f for t in item.tracks for f in range(t.first_frame, t.last_frame + 1)})
        item.face_track_coverage = covered / max(1, item.video_frames)
        if not item.tracks:
            item.error = "no usable face track: " + "; ".join(item.rejected_tracks)
            item.error_side = "video"
            return
        if len(item.tracks) > 1:
            item.notes.append(f"{len(item.tracks)} face tracks: LSE-C / LSE-D are their mean")
        item.lse_c = float(np.mean([t.lse_c for t in item.tracks]))
        item.lse_d = float(np.mean([t.lse_d for t in item.tracks]))
        item.offset_frames = max(item.tracks, key=lambda t: t.windows).offset_frames
        item.frames_used = sum(t.windows for t in item.tracks)

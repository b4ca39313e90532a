"""SyncNet (``syncnet_v2.model``) and the LSE-C / LSE-D scores computed from it.

Recipe (joonson/syncnet_python ``SyncNetModel.S`` and ``SyncNetInstance.evaluate``, as used by Wav2Lip's
``evaluation/scores_LSE``):

* Video: 224 x 224 face crops at 25 fps, BGR channel order, values 0..255 (not normalised); one lip
  feature per 5-frame window starting at frame i.
* Audio: `agomni.metrics.av.mfcc.syncnet_mfcc` (13 x 100 per second); the window of video frame i is MFCC
  columns 4 i .. 4 i + 19 (20 columns = 0.2 s).
* Usable frames: min(video frames, floor(audio samples / 640)) = n; windows i = 0 .. n - 6 (the reference
  stops one window short of n - 5; kept).
* Distances: audio features zero-padded by ``vshift`` rows at both ends; for every video feature i the
  Euclidean distance (``torch.nn.functional.pairwise_distance``, eps 1e-6) to padded audio rows
  i .. i + 2 vshift, i.e. audio windows i - vshift .. i + vshift. Mean over windows -> ``mdist`` (2 vshift + 1).
* LSE-D = min(mdist) (lower is better), LSE-C = median(mdist) - min(mdist) (higher is better),
  AV offset = vshift - argmin(mdist) in video frames (positive: the audio lags the video).

Parameter names follow ``syncnet_v2.model`` (``netcnnaud.*``, ``netfcaud.*``, ``netcnnlip.*``,
``netfclip.*``), so the published file loads with `agomni.weights.load_strict` and no renaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

VSHIFT = 15
WINDOW_FRAMES = 5
MFCC_PER_FRAME = 4
MFCC_WINDOW = 20
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
FEATURE_DIM = 1024


def _conv_bn(conv: nn.Module, channels: int, norm: type[nn.Module]) -> list[nn.Module]:
    return [conv, norm(channels), nn.ReLU(inplace=True)]


class SyncNet(nn.Module):
    """The two-stream SyncNet: MFCC windows (N, 1, 13, 20) -> (N, 1024); face windows (N, 3, 5, 224, 224)
    -> (N, 1024). Layer indices match ``syncnet_v2.model``."""

    def __init__(self, feature_dim: int = FEATURE_DIM):
        super().__init__()
        c2, b2 = nn.Conv2d, nn.BatchNorm2d
        self.netcnnaud = nn.Sequential(
            *_conv_bn(c2(1, 64, 3, padding=1), 64, b2),
            nn.MaxPool2d(1, 1),
            *_conv_bn(c2(64, 192, 3, padding=1), 192, b2),
            nn.MaxPool2d(3, stride=(1, 2)),
            *_conv_bn(c2(192, 384, 3, padding=1), 384, b2),
            *_conv_bn(c2(384, 256, 3, padding=1), 256, b2),
            *_conv_bn(c2(256, 256, 3, padding=1), 256, b2),
            nn.MaxPool2d(3, stride=2),
            *_conv_bn(c2(256, 512, (5, 4)), 512, b2),
        )
        c3, b3 = nn.Conv3d, nn.BatchNorm3d
        self.netcnnlip = nn.Sequential(
            *_conv_bn(c3(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, b3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn(c3(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, b3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn(c3(256, 512, (1, 6, 6)), 512, b3),
        )
        self.netfcaud = self._head(feature_dim)
        self.netfclip = self._head(feature_dim)

    @staticmethod
    def _head(feature_dim: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, feature_dim))

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(mfcc_windows).flatten(1))

    def forward_lip(self, face_windows: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(face_windows).flatten(1))


def usable_windows(video_frames: int, audio_samples: int) -> int:
    """Number of 5-frame windows SyncNet scores (syncnet_python: min(frames, samples // 640) - 5; may be <= 0)."""
    return min(video_frames, audio_samples // SAMPLES_PER_FRAME) - WINDOW_FRAMES


#: SyncNet windows per forward call by default (syncnet_python's ``--batch_size``); any size gives the
#: same features (eval-mode batch norm), to float32 rounding.
BATCH_WINDOWS = 20


@torch.inference_mode()
def syncnet_features(
    net: SyncNet, faces: torch.Tensor, mfcc: torch.Tensor, windows: int, batch_size: int = BATCH_WINDOWS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lip and audio features (windows, 1024) each, on the CPU.

    faces: (frames, 3, 224, 224) float, BGR 0..255; mfcc: (13, columns) float. Window i covers frames
    i .. i + 4 and MFCC columns 4 i .. 4 i + 19. Both inputs move to the network's device once; windows
    are cut there and run `batch_size` at a time.
    """
    device = next(net.parameters()).device
    lip, aud = [], []
    video = faces.to(device).permute(1, 0, 2, 3)  # (3, frames, H, W)
    columns = mfcc.to(device)
    for start in range(0, windows, batch_size):
        index = range(start, min(windows, start + batch_size))
        clips = torch.stack([video[:, i : i + WINDOW_FRAMES] for i in index])
        cols = torch.stack(
            [columns[None, :, i * MFCC_PER_FRAME : i * MFCC_PER_FRAME + MFCC_WINDOW] for i in index]
        )
        lip.append(net.forward_lip(clips))
        aud.append(net.forward_aud(cols))
    return torch.cat(lip).float().cpu(), torch.cat(aud).float().cpu()


def offset_distances(lip: torch.Tensor, aud: torch.Tensor, vshift: int = VSHIFT) -> torch.Tensor:
    """(windows, 2 vshift + 1) distances: entry [i, j] is |lip_i - aud_{i + j - vshift}| (zero rows outside)."""
    padded = F.pad(aud, (0, 0, vshift, vshift))
    span = 2 * vshift + 1
    rows = torch.arange(lip.shape[0])[:, None] + torch.arange(span)[None, :]
    return F.pairwise_distance(lip[:, None, :].expand(-1, span, -1), padded[rows], eps=1e-6)


@dataclass(frozen=True)
class SyncScores:
    """LSE-D (min mean distance; lower is better), LSE-C (median - min; higher is better), AV offset in
    video frames at 25 fps (vshift - argmin), the per-offset mean distance curve and windows used."""

    lse_d: float
    lse_c: float
    offset_frames: int
    mean_distances: tuple[float, ...]
    windows: int


def lse_scores(mean_distances: torch.Tensor, windows: int, vshift: int = VSHIFT) -> SyncScores:
    """LSE-D, LSE-C and offset from the (2 vshift + 1) mean distance curve (torch.median: the lower median)."""
    curve = torch.as_tensor(mean_distances, dtype=torch.float64)
    if curve.shape != (2 * vshift + 1,):
        raise ValueError(f"expected {2 * vshift + 1} mean distances, got shape {tuple(curve.shape)}")
    low, arg = torch.min(curve, 0)
    return SyncScores(
        lse_d=float(low),
        lse_c=float(torch.median(curve) - low),
        offset_frames=vshift - int(arg),
        mean_distances=tuple(float(v) for v in curve),
        windows=windows,
    )

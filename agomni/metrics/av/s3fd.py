"""S3FD face detector (``sfd_face.pth``), as syncnet_python's face tracking pipeline runs it.

Recipe (joonson/syncnet_python ``detectors/s3fd``; ``run_pipeline.py`` calls it with ``conf_th=0.9``,
``scales=[0.25]``):

1. RGB uint8 frame resized by the scale with ``cv2.resize`` (bilinear); per channel
   ``(R - 123, G - 117, B - 104)`` (the reference subtracts its BGR mean after a channel swap and swaps back).
2. VGG-16 trunk (conv layers with ceil-mode third pooling, dilated fc6/fc7 convolutions), L2-normalised
   conv3_3 / conv4_3 / conv5_3 sources (scales 10, 8, 5), two extra stages: six sources with strides
   4 .. 128 and anchors 16 .. 512 px. The first confidence head has a max-out background (3 channels).
3. Boxes decoded with variances (0.1, 0.2); softmax face probability; per image class NMS (IoU 0.3, the
   5000 best boxes above 0.05, at most 750 kept, in descending score order).
4. Boxes with score > ``conf_th`` scaled to the full frame, then a final NMS at IoU 0.1.

Parameter names follow ``sfd_face.pth`` (``vgg.<i>``, ``L2Norm{3,4,5}_3``, ``extras``, ``loc``, ``conf``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

CHANNEL_MEAN_RGB = (123.0, 117.0, 104.0)
STEPS = (4, 8, 16, 32, 64, 128)
ANCHORS = (16, 32, 64, 128, 256, 512)
VARIANCES = (0.1, 0.2)
CLASS_NMS_IOU = 0.3
CLASS_NMS_CANDIDATES = 5000
CLASS_NMS_KEEP = 750
CANDIDATE_SCORE = 0.05
FINAL_NMS_IOU = 0.1

# conv channel plan of the trunk: ints are 3x3 convs (+ ReLU), "M" 2x2 max-pool, "C" ceil-mode max-pool.
_VGG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M")


class L2Norm(nn.Module):
    """Per-position L2 normalisation over channels (eps 1e-10 added to the norm), times a learned scale."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) * self.weight[None, :, None, None]


def _trunk() -> nn.ModuleList:
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG:
        if item in ("M", "C"):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=item == "C"))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    layers += [nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


class S3FDNet(nn.Module):
    """Image (1, 3, H, W) mean-subtracted RGB -> (boxes (P, 4) in [0, 1] x1 y1 x2 y2, face probability (P,))."""

    SOURCE_ENDS = (16, 23, 30)  # trunk indices after conv3_3, conv4_3, conv5_3 (+ ReLU)

    def __init__(self):
        super().__init__()
        self.vgg = _trunk()
        self.L2Norm3_3 = L2Norm(256, 10)
        self.L2Norm4_3 = L2Norm(512, 8)
        self.L2Norm5_3 = L2Norm(512, 5)
        self.extras = nn.ModuleList(
            [
                nn.Conv2d(1024, 256, 1),
                nn.Conv2d(256, 512, 3, stride=2, padding=1),
                nn.Conv2d(512, 128, 1),
                nn.Conv2d(128, 256, 3, stride=2, padding=1),
            ]
        )
        source_channels = (256, 512, 512, 1024, 512, 256)
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, padding=1) for c in source_channels])
        self.conf = nn.ModuleList(
            [nn.Conv2d(c, 4 if k == 0 else 2, 3, padding=1) for k, c in enumerate(source_channels)]
        )

    def sources(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        norms = (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)
        start = 0
        for end, norm in zip(self.SOURCE_ENDS, norms, strict=True):
            for layer in self.vgg[start:end]:
                x = layer(x)
            out.append(norm(x))
            start = end
        for layer in self.vgg[start:]:
            x = layer(x)
        out.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x))
            if k % 2 == 1:
                out.append(x)
        return out

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        locs, confs, priors = [], [], []
        for k, source in enumerate(self.sources(image)):
            conf = self.conf[k](source)
            if k == 0:
                conf = torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)
            locs.append(self.loc[k](source).permute(0, 2, 3, 1).reshape(-1, 4))
            confs.append(conf.permute(0, 2, 3, 1).reshape(-1, 2))
            priors.append(_priors(source.shape[-2:], STEPS[k], ANCHORS[k], height, width))
        loc, prior = torch.cat(locs), torch.cat(priors).to(image.device)
        centre = prior[:, :2] + loc[:, :2] * VARIANCES[0] * prior[:, 2:]
        size = prior[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=1)
        return boxes, torch.softmax(torch.cat(confs), dim=-1)[:, 1]


def _priors(shape: torch.Size, step: int, anchor: int, height: int, width: int) -> torch.Tensor:
    """(h * w, 4) anchor centres and sizes, row-major, relative to the input size (float32 as the reference)."""
    rows, cols = shape
    i, j = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    cx = (j.flatten().double() + 0.5) / (width / step)
    cy = (i.flatten().double() + 0.5) / (height / step)
    sizes = torch.tensor([anchor / width, anchor / height], dtype=torch.float64).expand(cx.numel(), 2)
    return torch.cat([cx[:, None], cy[:, None], sizes], dim=1).float()


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS in descending score order (boxes x1 y1 x2 y2, areas without +1)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(kind="stable")[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]))
        inter = w * h
        order = order[1:][inter / (areas[i] + areas[order[1:]] - inter) <= iou]
    return np.asarray(keep, dtype=int)


class S3FD:
    """Face boxes of RGB uint8 frames: `detect(frame)` -> (n, 5) float64 [x1, y1, x2, y2, score] in pixels
    (a `agomni.metrics.av.faces.FaceDetector`, the reference one)."""

    name = "s3fd"

    def __init__(self, net: S3FDNet, *, scale: float = 0.25, threshold: float = 0.9, device: str = "cpu"):
        self.net = net.eval().to(device)
        self.scale, self.threshold, self.device = scale, threshold, torch.device(device)

    def network_input(self, frame: np.ndarray) -> torch.Tensor:
        small = cv2.resize(frame, dsize=(0, 0), fx=self.scale, fy=self.scale, interpolation=cv2.INTER_LINEAR)
        x = small.astype(np.float32) - np.asarray(CHANNEL_MEAN_RGB, dtype=np.float32)
        return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]

    @torch.inference_mode()
    def detect(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        boxes, scores = self.net(self.network_input(frame).to(self.device))
        boxes, scores = boxes.cpu(), scores.cpu()
        chosen = scores > CANDIDATE_SCORE
        boxes, scores = boxes[chosen], scores[chosen]
        best = scores.argsort(stable=True)[-CLASS_NMS_CANDIDATES:]
        boxes, scores = boxes[best], scores[best]
        kept = torchvision.ops.nms(boxes, scores, CLASS_NMS_IOU)[:CLASS_NMS_KEEP]
        boxes, scores = boxes[kept], scores[kept]
        above = scores > self.threshold
        # the reference stops at the first score not above the threshold (scores are in descending order)
        count = int(above.long().cumprod(0).sum())
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        out = np.concatenate(
            [(boxes[:count] * scale).numpy().astype(np.float64), scores[:count, None].numpy()], axis=1
        )
        if len(out) == 0:
            return np.empty((0, 5))
        return out[_greedy_nms(out[:, :4], out[:, 4], FINAL_NMS_IOU)]

"""Statistics shared by the upstream per-file loops of bench_anchors.py, computed with numpy/scipy the way
pytorch-fid and av-benchmark do (no agomni code): Fréchet distance with ``scipy.linalg.sqrtm`` of the
covariance product, the file listing / result line every loop uses, and the command line of an FD loop."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import linalg


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """FD between Gaussians fitted to rows of ``a`` [N, D] and ``b`` [M, D] (float64, unbiased covariance);
    the square root of the covariance product by ``scipy.linalg.sqrtm``, retried with ``eps`` on the
    diagonals when it is not finite, the imaginary part dropped."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(root).all():
        offset = np.eye(cov_a.shape[0]) * eps
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def audio_files(folder: Path) -> list[Path]:
    """The .wav and .flac files of ``folder``, sorted by name (as the upstream loops list them)."""
    return sorted([*folder.glob("*.wav"), *folder.glob("*.flac")], key=lambda p: p.stem)


def emit(anchor: str, values: dict[str, float], started: float) -> None:
    """One JSON line on stdout: the anchor, its metric values and the seconds since ``started``."""
    line = {"anchor": anchor, "values": values, "inner_s": round(time.perf_counter() - started, 2)}
    print(json.dumps(line), file=sys.stdout, flush=True)


def fd_loop(
    description: str,
    anchor: str,
    metric: str,
    weights_file: str,
    load: Callable[[Path], object],
    embed_folder: Callable[[object, Path, float], np.ndarray],
) -> None:
    """An FD loop's command line (``--pred P --ref R --weights WEIGHTS --seconds S``): the network from
    ``load(WEIGHTS/weights_file)``, the rows of each folder from ``embed_folder(network, folder, S)``, and
    one `emit` line with ``metric`` = their Fréchet distance; the seconds count from the start."""
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pred", type=Path, required=True)
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True, help=f"folder holding {weights_file}")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    network = load(args.weights / weights_file)
    pred = embed_folder(network, args.pred, args.seconds)
    ref = embed_folder(network, args.ref, args.seconds)
    emit(anchor, {metric: frechet_distance(pred, ref)}, started)

"""`load_video`: decode the first video stream of a container to uint8 RGB frames ``[frames, 3, H, W]``.

Frames go through an FFmpeg filter graph built with PyAV with the same filter description,
``fps=<rate>,format=pix_fmts=rgb24``, that torio's ``StreamingMediaDecoder.add_basic_video_stream(
frame_rate=..., format="rgb24")`` builds (``_get_vfilter_desc`` in torio/io/_streaming_media_decoder.py)
for av-benchmark's video reader (``av_bench/data/video_dataset.py``):

* fps policy ``"native"`` (``fps=None``): every decoded frame, no frame-rate conversion.
* fps policy ``"ffmpeg-fps"`` (``fps=r``): FFmpeg's ``fps`` filter (``round=near``, ``eof_action=round``):
  output frame k stands at time k / r from the first frame; it shows the last source frame whose
  timestamp, rounded to the nearest multiple of 1 / r, is <= k / r (frames are duplicated or dropped
  to fill the grid); a clip of D seconds gives about round(D * r) frames.
* colour: ``format=pix_fmts=rgb24`` (FFmpeg's YUV -> RGB conversion, values 0..255).

Resize (per frame, uint8 in and out, as the frames are decoded so memory holds only output-size
frames) with ``torchvision.transforms.v2.functional.resize`` (antialias=True), as av-benchmark's
``v2.Resize(224, interpolation=BICUBIC)``:
``size=None`` keeps the native size; an int scales the *shorter* side to it keeping the aspect ratio;
``(height, width)`` resizes to exactly that. Policies: "torchvision-bicubic" (default),
"torchvision-bilinear".

Truncation raises `UnreadableMediaError`, detected three ways: the byte-level container checks of
`agomni.io.truncation` (whole MP4 boxes, the Matroska segment size), FFmpeg errors while opening or
decoding, and a decoded span (last frame time - first frame time + one frame) shorter than the
declared stream duration by more than two frame intervals + 0.02 s.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from fractions import Fraction

import av
import torch

from agomni.errors import EmptyMediaError, UsageError
from agomni.io.container import (
    check_file,
    check_not_truncated,
    declared_duration_s,
    file_sha256,
    first_stream,
    media_errors,
    open_container,
    pyav_decoder_name,
)
from agomni.io.records import VideoRecord

# Resize policy -> torchvision InterpolationMode member name.
RESIZE_POLICIES: dict[str, str] = {
    "torchvision-bicubic": "BICUBIC",
    "torchvision-bilinear": "BILINEAR",
}
FPS_POLICIES: tuple[str, ...] = ("native", "ffmpeg-fps")


def _check_arguments(fps: float | Fraction | None, size: int | tuple[int, int] | None, resize: str) -> None:
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, int | float | Fraction) or not fps > 0
    ):
        raise UsageError(f"fps must be a positive number of frames per second or None, got {fps!r}")
    valid_size = (
        size is None
        or (isinstance(size, int) and not isinstance(size, bool) and size > 0)
        or (
            isinstance(size, tuple)
            and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        )
    )
    if not valid_size:
        raise UsageError(f"size must be None, a positive int (shorter side) or (height, width), got {size!r}")
    if resize not in RESIZE_POLICIES:
        raise UsageError(f"unknown resize policy {resize!r}; choose one of {', '.join(RESIZE_POLICIES)}")


def _filter_graph(stream: av.video.stream.VideoStream, fps: Fraction | None) -> av.filter.Graph:
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)]
    if fps is not None:
        nodes.append(graph.add("fps", f"fps={fps.numerator}/{fps.denominator}"))
    nodes.append(graph.add("format", "pix_fmts=rgb24"))
    nodes.append(graph.add("buffersink"))
    for upstream, downstream in itertools.pairwise(nodes):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _drain(
    graph: av.filter.Graph,
    out: list[torch.Tensor],
    native: list[tuple[int, int]],
    resize: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """Pull every ready rgb24 frame from `graph`, resize it if asked, append it as ``[3, H, W]`` uint8."""
    while True:
        try:
            frame = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
        if not native:
            native.append((frame.height, frame.width))
        out.append(resize(torch.from_numpy(frame.to_ndarray()).permute(2, 0, 1)))


def _resizer(size: int | tuple[int, int] | None, policy: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-frame ``[3, H, W]`` uint8 -> uint8 resize for `size` (identity when None)."""
    if size is None:
        return lambda frame: frame.contiguous()
    # Imported here, only when frames are resized: torchvision (with the torch._dynamo it loads) costs
    # ~3 CPU seconds of start-up that generation, which decodes at the native size, never needs. No
    # import cycle is involved (torchvision does not import agomni).
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    target = list(size) if isinstance(size, tuple) else [size]
    mode = InterpolationMode[RESIZE_POLICIES[policy]]
    return lambda frame: tvf.resize(frame, target, interpolation=mode, antialias=True)


def load_video(
    path: str | os.PathLike[str],
    *,
    fps: float | Fraction | None = None,
    size: int | tuple[int, int] | None = None,
    resize: str = "torchvision-bicubic",
) -> tuple[torch.Tensor, VideoRecord]:
    """Decode video frames as uint8 RGB ``[frames, 3, height, width]`` plus a `VideoRecord`.

    Args:
        path: an mp4, mkv or webm file (any container FFmpeg reads); the first video stream is used.
        fps: output frame rate (frames per second) via the "ffmpeg-fps" policy; None keeps every frame.
            Floats are read as their shortest decimal (0.5 -> 1/2, 29.97 -> 2997/100).
        size: None (native), an int (shorter side, aspect kept) or (height, width) in pixels.
        resize: "torchvision-bicubic" or "torchvision-bilinear" (only used when `size` is given).

    Raises (all name the file): `UnreadableMediaError` (missing, corrupt, truncated),
    `EmptyMediaError` (0-byte file or no frames), `UnsupportedCodecError` (no video stream or no
    decoder); `UsageError` for bad arguments.
    """
    _check_arguments(fps, size, resize)
    rate = Fraction(str(fps)) if isinstance(fps, float) else (Fraction(fps) if fps is not None else None)
    file_path, file_bytes = check_file(path)
    container = open_container(file_path)
    with container:
        stream, byte_integrity = first_stream(container, file_path, "video")
        frames: list[torch.Tensor] = []
        native: list[tuple[int, int]] = []
        source_times: list[float] = []
        source_frames = 0
        resize_frame = _resizer(size, resize)
        with media_errors(file_path, "decoding video"):
            graph = _filter_graph(stream, rate)
            for frame in container.decode(stream):
                source_frames += 1
                if frame.time is not None:
                    source_times.append(frame.time)
                graph.push(frame)
                _drain(graph, frames, native, resize_frame)
            graph.push(None)
            _drain(graph, frames, native, resize_frame)
        if not frames or source_frames == 0:
            raise EmptyMediaError(file_path, "the video stream decodes to no frames")
        source_fps = float(stream.average_rate) if stream.average_rate else None
        frame_interval = 1.0 / source_fps if source_fps else 0.0
        decoded_span = (
            max(source_times) - min(source_times) + frame_interval
            if source_times
            else source_frames * frame_interval
        )
        declared = declared_duration_s(container, stream)
        integrity = "; ".join(
            [
                *byte_integrity,
                check_not_truncated(file_path, "video", decoded_span, declared, 2 * frame_interval + 0.02),
            ]
        )
        (source_height, source_width) = native[0]
        container_name, codec = container.format.name, stream.codec_context.codec.canonical_name
        stream_index = stream.index
    video = torch.stack(frames).contiguous()
    record = VideoRecord(
        path=str(file_path),
        file_bytes=file_bytes,
        file_sha256=file_sha256(file_path),
        container=container_name,
        codec=codec,
        decoder=pyav_decoder_name(),
        stream_index=stream_index,
        source_fps=source_fps,
        source_frames=source_frames,
        source_width=source_width,
        source_height=source_height,
        source_duration_s=decoded_span,
        declared_duration_s=declared,
        integrity_check=integrity,
        fps_policy="native" if rate is None else "ffmpeg-fps",
        fps=float(rate) if rate is not None else source_fps,
        frames=video.shape[0],
        resize_policy="none" if size is None else resize,
        size_request=size,
        height=video.shape[2],
        width=video.shape[3],
    )
    return video, record

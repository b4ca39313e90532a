"""Records of what loading a media file did: frozen, JSON-serialisable via ``to_dict()``.

Units: rates in Hz, durations in seconds, sizes in pixels, file sizes in bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

ParamValue = str | int | float | None


@dataclasses.dataclass(frozen=True)
class AudioRecord:
    """Provenance of one `load_audio` call.

    ``source_*`` describe the decoded stream before any processing; the unprefixed ``sample_rate``,
    ``channels``, ``samples`` and ``duration_s`` describe the returned float32 tensor
    ``[channels, samples]``. ``declared_duration_s`` is what the container/header claims (None when it
    claims nothing); ``integrity_check`` says how truncation was ruled out, or why it could not be.
    """

    path: str
    file_bytes: int
    file_sha256: str
    container: str
    codec: str
    decoder: str
    stream_index: int | None
    source_sample_rate: int
    source_channels: int
    source_samples: int
    source_duration_s: float
    declared_duration_s: float | None
    integrity_check: str
    downmix: str
    resampler: str
    resample_applied: bool
    resample_params: tuple[tuple[str, ParamValue], ...]
    sample_rate: int
    channels: int
    samples: int
    duration_s: float
    peak_abs: float
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of JSON types (``resample_params`` becomes an object)."""
        out = dataclasses.asdict(self)
        out["resample_params"] = dict(self.resample_params)
        return out


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    """Provenance of one `load_video` call.

    Frames are returned as uint8 RGB ``[frames, 3, height, width]``. ``source_*`` describe the decoded
    stream; ``fps_policy`` / ``fps`` and ``resize_policy`` / ``height`` / ``width`` the returned frames.
    """

    path: str
    file_bytes: int
    file_sha256: str
    container: str
    codec: str
    decoder: str
    stream_index: int
    source_fps: float | None
    source_frames: int
    source_width: int
    source_height: int
    source_duration_s: float
    declared_duration_s: float | None
    integrity_check: str
    fps_policy: str
    fps: float | None
    frames: int
    resize_policy: str
    size_request: int | tuple[int, int] | None
    height: int
    width: int
    pixel_format: str = "rgb24"
    dtype: str = "uint8"
    layout: str = "[frames, 3, height, width]"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of JSON types (a (height, width) size request becomes a list)."""
        out = dataclasses.asdict(self)
        if isinstance(self.size_request, tuple):
            out["size_request"] = list(self.size_request)
        return out

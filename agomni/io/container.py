"""File checks, PyAV container opening and truncation checks shared by audio and video loading.

Every failure becomes a typed `MediaError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import av

from agomni.errors import EmptyMediaError, UnreadableMediaError, UnsupportedCodecError
from agomni.io.truncation import BYTE_CHECKS

_MKV_DURATION = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def check_file(path: str | os.PathLike[str]) -> tuple[Path, int]:
    """Return ``(path, size_in_bytes)`` for an existing, non-empty regular file, else raise a typed error."""
    p = Path(path)
    if not p.exists():
        raise UnreadableMediaError(p, "file does not exist")
    if not p.is_file():
        raise UnreadableMediaError(p, "not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise EmptyMediaError(p, "file is empty (0 bytes)")
    with read_errors(p):
        p.open("rb").close()
    return p, size


@contextlib.contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn an OS error while reading `path` into `UnreadableMediaError`, saying when permissions (not the
    file's content) are the problem."""
    try:
        yield
    except PermissionError as err:
        raise UnreadableMediaError(
            path, "cannot be read: permission denied (the file may be fine; check its permissions)"
        ) from err
    except OSError as err:
        raise UnreadableMediaError(path, f"cannot be read ({err.strerror or err})") from err


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes (read in 1 MiB blocks); `UnreadableMediaError` if it cannot be read."""
    digest = hashlib.sha256()
    with read_errors(path), path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pyav_decoder_name() -> str:
    """The decoding library and its version, for records."""
    major, minor, micro = av.library_versions["libavcodec"]
    return f"pyav {av.__version__} (libavcodec {major}.{minor}.{micro})"


@contextlib.contextmanager
def media_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn FFmpeg/OS errors raised while `doing` something with `path` into typed media errors."""
    try:
        yield
    except av.error.DecoderNotFoundError as err:
        raise UnsupportedCodecError(path, f"no decoder for this codec while {doing}: {err}") from err
    except PermissionError as err:
        raise UnreadableMediaError(
            path, f"cannot be read: permission denied while {doing} (check the file's permissions)"
        ) from err
    except (av.FFmpegError, OSError) as err:
        raise UnreadableMediaError(
            path, f"corrupt, truncated or not a media file ({doing} failed: {err})"
        ) from err


def open_container(path: Path) -> av.container.InputContainer:
    """Open `path` with PyAV for reading; unreadable input raises `UnreadableMediaError`."""
    with media_errors(path, "opening the container"):
        return av.open(str(path), mode="r")


def describe_streams(container: av.container.InputContainer) -> str:
    """``"video h264, audio aac"`` (for error messages)."""
    kinds = [f"{s.type} {s.codec_context.name if s.codec_context else '?'}" for s in container.streams]
    return ", ".join(kinds) or "no streams"


def first_stream(
    container: av.container.InputContainer, path: Path, kind: str
) -> tuple[av.stream.Stream, list[str]]:
    """The container's first `kind` ("audio" or "video") stream, after the byte-level truncation check of
    its format (`agomni.io.truncation.BYTE_CHECKS`), whose description is returned as a list (empty when
    the format has none). UnsupportedCodecError when there is no such stream or no decoder for it."""
    byte_check = BYTE_CHECKS.get(container.format.name)
    checks = [byte_check(path)] if byte_check is not None else []
    streams = getattr(container.streams, kind)
    if not streams:
        raise UnsupportedCodecError(
            path, f"no {kind} stream (container holds: {describe_streams(container)})"
        )
    stream = streams[0]
    if stream.codec_context is None:
        raise UnsupportedCodecError(
            path,
            f"the {kind} stream has no decodable codec (unknown to this FFmpeg build, or its codec "
            "parameters are missing because the file is damaged)",
        )
    return stream, checks


def declared_duration_s(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Duration in seconds the file declares for `stream`, or None when it declares none.

    Order: the stream's own duration; Matroska's per-stream ``DURATION`` tag; the container duration,
    but only when the container has this one stream (otherwise it may belong to a longer stream).
    """
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        match = _MKV_DURATION.match(tag.strip())
        if match:
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if len(container.streams) == 1 and container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def check_not_truncated(
    path: Path, kind: str, decoded_s: float, declared_s: float | None, tolerance_s: float
) -> str:
    """Raise `UnreadableMediaError` if the decoded `kind` stream is shorter than declared beyond tolerance.

    Returns the sentence recorded as ``integrity_check``. Without a declared duration nothing can be
    checked, and the returned sentence says so.
    """
    if declared_s is None:
        return "not checked: the container declares no duration for this stream"
    if decoded_s < declared_s - tolerance_s:
        raise UnreadableMediaError(
            path,
            f"truncated or corrupt: decoded {decoded_s:.3f} s of {kind} but the container declares "
            f"{declared_s:.3f} s (tolerance {tolerance_s:.3f} s)",
        )
    return (
        f"decoded {decoded_s:.3f} s of {kind} vs declared {declared_s:.3f} s "
        f"(shortfall tolerance {tolerance_s:.3f} s): not truncated"
    )

"""agomni.io.load_video against the colours drawn, FFmpeg's fps rule computed by hand, and torchvision."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from agomni.errors import EmptyMediaError, UnreadableMediaError, UnsupportedCodecError, UsageError
from agomni.io import VIDEO_EXTENSIONS, load_video
from tests.media_fixtures import make_text_file, make_tone_file, make_truncated_copy, make_video_file, sine

# 20 distinct colours, far apart in the red channel so a frame's source index is unambiguous
COLOURS = [(10 + 12 * i, 240 - 11 * i, (37 * i) % 256) for i in range(20)]
SOURCE_FPS = 10


def source_index(frame: torch.Tensor) -> int:
    """Index of the drawn colour nearest to a decoded frame's centre pixel."""
    pixel = frame[:, frame.shape[1] // 2, frame.shape[2] // 2].int().numpy()
    return int(np.argmin([np.abs(pixel - np.array(c)).sum() for c in COLOURS]))


@pytest.fixture(scope="module", params=VIDEO_EXTENSIONS)
def clip(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / f"clip{request.param}"
    return make_video_file(path, COLOURS, fps=SOURCE_FPS, size=(48, 64), audio=sine(440.0, 48000, 2.0))


def test_native_frames_count_size_and_colour(clip):
    video, record = load_video(clip)
    assert video.dtype == torch.uint8 and tuple(video.shape) == (20, 3, 48, 64)
    for index in (0, 7, 19):
        # RGB -> YUV 4:2:0 -> RGB rounding moves a solid colour by a few levels at most
        drawn = torch.tensor(COLOURS[index], dtype=torch.int32)[:, None, None]
        assert (video[index].int() - drawn).abs().max() <= 4
    assert record.source_frames == 20 and record.frames == 20 and record.source_fps == SOURCE_FPS
    assert (record.source_height, record.source_width, record.height, record.width) == (48, 64, 48, 64)
    assert record.fps_policy == "native" and record.resize_policy == "none"
    assert record.source_duration_s == pytest.approx(2.0) and "not truncated" in record.integrity_check
    assert record.stream_index == 0 and json.loads(json.dumps(record.to_dict()))["frames"] == 20


def expected_fps_indices(n_source: int, source_fps: int, fps: Fraction) -> list[int]:
    """FFmpeg fps filter (round=near): source i lands in slot round(i / source_fps * fps) (half away from 0);
    slot k shows the last source frame landing at or before k; D seconds give round(D * fps) slots."""
    slots = [math.floor(Fraction(i, source_fps) * fps + Fraction(1, 2)) for i in range(n_source)]
    count = math.floor(Fraction(n_source, source_fps) * fps + Fraction(1, 2))
    return [max(i for i, slot in enumerate(slots) if slot <= k) for k in range(count)]


@pytest.mark.parametrize("fps", [5, 25, 3, 0.5])
def test_ffmpeg_fps_policy_follows_the_documented_rule(clip, fps):
    video, record = load_video(clip, fps=fps)
    expected = expected_fps_indices(20, SOURCE_FPS, Fraction(str(fps)))
    assert [source_index(frame) for frame in video] == expected
    assert record.fps_policy == "ffmpeg-fps" and record.fps == float(fps) and record.frames == len(expected)


@pytest.mark.parametrize(("size", "shape"), [(32, (32, 42)), ((24, 40), (24, 40))])
def test_resize_matches_torchvision_resize(clip, size, shape):
    native, _ = load_video(clip)
    video, record = load_video(clip, size=size)
    # av-benchmark's transform: v2.Resize(size, interpolation=BICUBIC) (antialias on) on uint8 frames
    expected = v2.Resize(list(size) if isinstance(size, tuple) else size, v2.InterpolationMode.BICUBIC)(
        native
    )
    assert tuple(video.shape[2:]) == shape and torch.equal(video, expected)
    assert record.resize_policy == "torchvision-bicubic" and (record.height, record.width) == shape


def test_audio_only_file_has_no_video(tmp_path):
    tone = make_tone_file(tmp_path / "tone", "aac", duration=0.5)
    with pytest.raises(UnsupportedCodecError, match="no video stream") as info:
        load_video(tone.path)
    assert str(tone.path) in str(info.value)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("suffix", VIDEO_EXTENSIONS)
def test_truncated_video_raises(tmp_path, suffix, fraction):
    full = make_video_file(tmp_path / f"full{suffix}", COLOURS, fps=SOURCE_FPS, audio=sine(440.0, 48000, 2.0))
    _, record = load_video(full)
    assert "all present" in record.integrity_check or "all whole" in record.integrity_check
    cut = make_truncated_copy(full, tmp_path / f"cut{suffix}", fraction)
    with pytest.raises(UnreadableMediaError) as info:
        load_video(cut)
    assert str(cut) in str(info.value)


def test_empty_missing_and_text_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMediaError, match="0 bytes") as info:
        load_video(empty)
    assert str(empty) in str(info.value)
    missing = tmp_path / "gone.mkv"
    with pytest.raises(UnreadableMediaError, match="does not exist"):
        load_video(missing)
    text = make_text_file(tmp_path / "notes.webm")
    with pytest.raises(UnreadableMediaError) as info:
        load_video(text)
    assert str(text) in str(info.value)


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="fps"):
        load_video(tmp_path / "x.mp4", fps=0)
    with pytest.raises(UsageError, match="size"):
        load_video(tmp_path / "x.mp4", size=(10,))
    with pytest.raises(UsageError, match="resize policy"):
        load_video(tmp_path / "x.mp4", size=10, resize="nearest")

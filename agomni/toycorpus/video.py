"""Rendered toy videos: objects that hit a floor or walls (v2a, v2song) and a talking "mouth" (v2s).

Frames are uint8 RGB ``[frames, height, width, 3]``, frame k shows the scene at time k / fps seconds.
Scenes: a dark background (`BACKGROUND`); white surfaces (`SURFACE`): a floor (rows >= `FLOOR_TOP`) in
bounce scenes, two walls (columns < `WALL` and >= size - `WALL`) in slide scenes; one object (a disc
"ball" or a "square", `OBJECT_SIZE` pixels across) in one of `COLOURS`.

Motion: the object touches a surface exactly on the given contact frames and nowhere else. Between
two contacts it follows a parabola (bounce: its bottom row rises `height` pixels at mid-flight) or a
straight line from one wall to the other (slide). Before the first and after the last contact it moves
along the arc from/to a virtual contact outside the clip. On every non-contact frame the object stays at
least 2 pixels from the surfaces, so the touching frames can be read back from the pixels.

Files: H.264 in MP4 via PyAV (libx264, qp 0 = lossless in YUV 4:2:0, preset ultrafast, one thread,
no audio track), frame k at pts k with time base 1/fps. Edges sit on even rows/columns so that 4:2:0
chroma blocks never mix the object with a surface.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np

from agomni.errors import UsageError

FPS = 8
SIZE = 64
BACKGROUND = (30, 30, 40)
SURFACE = (255, 255, 255)
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
}
SHAPES: tuple[str, ...] = ("ball", "square")
FLOOR_TOP = 58
WALL = 4
OBJECT_SIZE = 10
_MIN_CLEARANCE = 2


def scene(kind: str, n_frames: int) -> np.ndarray:
    """Empty frames ``[n_frames, SIZE, SIZE, 3]`` of a "bounce" (floor), "slide" (walls) or "plain"
    (background only) scene."""
    frames = np.empty((n_frames, SIZE, SIZE, 3), np.uint8)
    frames[...] = BACKGROUND
    if kind == "bounce":
        frames[:, FLOOR_TOP:, :] = SURFACE
    elif kind == "slide":
        frames[:, :, :WALL] = SURFACE
        frames[:, :, SIZE - WALL :] = SURFACE
    elif kind != "plain":
        raise UsageError(f"unknown scene {kind!r}; known: bounce, slide, plain")
    return frames


def draw_object(frame: np.ndarray, shape: str, colour: str, top: int, left: int) -> None:
    """Paint a `shape` of `colour` whose bounding box starts at (`top`, `left`), in place."""
    rows, cols = np.mgrid[0:OBJECT_SIZE, 0:OBJECT_SIZE]
    if shape == "ball":
        centre = (OBJECT_SIZE - 1) / 2
        mask = (rows - centre) ** 2 + (cols - centre) ** 2 <= (OBJECT_SIZE / 2) ** 2
    elif shape == "square":
        mask = np.ones((OBJECT_SIZE, OBJECT_SIZE), bool)
    else:
        raise UsageError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    patch = frame[top : top + OBJECT_SIZE, left : left + OBJECT_SIZE]
    patch[mask] = COLOURS[colour]


def _arc_phase(frame_index: int, contacts: list[float]) -> tuple[int, float]:
    """(segment, fraction in [0, 1)) of `frame_index` between consecutive entries of `contacts`."""
    segment = int(np.searchsorted(contacts, frame_index, side="right")) - 1
    start, stop = contacts[segment], contacts[segment + 1]
    return segment, (frame_index - start) / (stop - start)


def _with_virtual(contacts: list[int], n_frames: int, rng: np.random.Generator) -> list[float]:
    """`contacts` with one virtual contact 1-4 frames before frame 0 and one 1-4 frames after the last."""
    before = -1 - int(rng.integers(4))
    after = n_frames + int(rng.integers(4))
    return [float(before), *map(float, contacts), float(after)]


def check_contacts(contacts: list[int], n_frames: int, min_gap: int) -> None:
    """Raise `UsageError` unless `contacts` are increasing frames in [1, n_frames - 2], >= min_gap apart."""
    ok = all(1 <= c <= n_frames - 2 for c in contacts) and all(
        b - a >= min_gap for a, b in itertools.pairwise(contacts)
    )
    if not contacts or not ok:
        raise UsageError(
            f"contact frames {contacts} must be increasing, within 1..{n_frames - 2} and >= {min_gap} apart"
        )


def render_bounce(
    shape: str,
    colour: str,
    contacts: list[int],
    heights: list[float],
    n_frames: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A bounce scene: the object lands on the floor exactly on `contacts` (frame indices).

    `heights` (pixels, one per arc: len(contacts) + 1) is how high each arc rises; the object drifts
    horizontally at a constant speed. Returns uint8 ``[n_frames, SIZE, SIZE, 3]``.
    """
    check_contacts(contacts, n_frames, 3)
    if len(heights) != len(contacts) + 1:
        raise UsageError("render_bounce needs one height per arc (len(contacts) + 1)")
    points = _with_virtual(contacts, n_frames, rng)
    frames = scene("bounce", n_frames)
    lowest_top = FLOOR_TOP - OBJECT_SIZE
    x0, x1 = rng.uniform(2, SIZE - OBJECT_SIZE - 2, size=2)
    for k in range(n_frames):
        segment, u = _arc_phase(k, points)
        lift = 0 if k in contacts else max(_MIN_CLEARANCE, round(4 * heights[segment] * u * (1 - u)))
        left = round(x0 + (x1 - x0) * k / max(1, n_frames - 1))
        draw_object(frames[k], shape, colour, lowest_top - lift, left)
    return frames


def render_slide(
    shape: str, colour: str, contacts: list[int], n_frames: int, rng: np.random.Generator
) -> np.ndarray:
    """A slide scene: the object moves in straight lines between the walls, touching a wall exactly on
    `contacts` (frame indices; alternately the right and left wall, the first one drawn at random)."""
    check_contacts(contacts, n_frames, 2)
    points = _with_virtual(contacts, n_frames, rng)
    frames = scene("slide", n_frames)
    left_stop, right_stop = WALL, SIZE - WALL - OBJECT_SIZE
    first_right = bool(rng.integers(2))
    # wall of each point (virtual ones included): alternating, point 1 (the first real contact) is first_right
    on_right = [(i % 2 == 1) == first_right for i in range(len(points))]
    top = 2 * int(rng.integers(6, 20))
    for k in range(n_frames):
        segment, u = _arc_phase(k, points)
        a = right_stop if on_right[segment] else left_stop
        b = right_stop if on_right[segment + 1] else left_stop
        left = round(a + (b - a) * u)
        if k not in contacts:
            left = min(max(left, left_stop + _MIN_CLEARANCE), right_stop - _MIN_CLEARANCE)
        draw_object(frames[k], shape, colour, top, left)
    return frames


#: Face colour per speaker (v2s): a speaker is recognisable from the video.
FACE_COLOURS: dict[str, tuple[int, int, int]] = {
    "en_m1": (200, 160, 120),
    "en_f1": (240, 200, 170),
    "en_m2": (150, 110, 80),
    "zh_m1": (210, 180, 130),
    "zh_f1": (245, 215, 180),
}
MOUTH = (70, 20, 30)
MOUTH_MAX_HEIGHT = 16
#: Frame RMS (full scale 1.0) at which the mouth is fully open.
MOUTH_FULL_RMS = 0.12


def mouth_openings(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """Per-frame mouth opening in [0, 1]: RMS of the audio in the 1/FPS s window centred on each frame's
    time, divided by `MOUTH_FULL_RMS`, clipped to 1. Returns float64 ``[n_frames]``."""
    half = sample_rate / FPS / 2
    out = np.zeros(n_frames)
    for k in range(n_frames):
        centre = k * sample_rate / FPS
        window = audio[max(0, round(centre - half)) : round(centre + half)]
        if window.size:
            out[k] = min(1.0, float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) / MOUTH_FULL_RMS)
    return out


def render_mouth(speaker: str, openings: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """A face (colour of `speaker`) whose mouth, 24 pixels wide, is 2 + openings * 16 pixels high
    (rounded to an even number, so 2 = closed ... 18 = fully open).

    Returns (uint8 frames ``[len(openings), SIZE, SIZE, 3]``, mouth height in pixels per frame; heights
    are even and the mouth starts on an even row)."""
    frames = scene("plain", len(openings))
    frames[:, 8:58, 12:52] = FACE_COLOURS[speaker]
    heights = []
    for k, opening in enumerate(openings):
        height = 2 + 2 * round(opening * MOUTH_MAX_HEIGHT / 2)
        top = 40 - 2 * (height // 4)
        frames[k, top : top + height, 20:44] = MOUTH
        heights.append(height)
    return frames, heights


def write_mp4(path: Path, frames: np.ndarray, fps: int = FPS) -> Path:
    """Encode uint8 RGB ``[frames, H, W, 3]`` as lossless H.264 MP4 at `fps` (see module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path

"""Generated talking-face videos for the lip-sync tests.

A drawn face (skin oval, eyes with brows, nose, dark mouth) on a grey background; the mouth's opening on
frame k follows the audio envelope at time k / fps, so mouth and audio move together. Audio: a 180 Hz
buzz with harmonics whose amplitude is a seeded syllable envelope (about 4 syllables per second).
Files: H.264 lossless (qp 0) + AAC in MP4 via PyAV, or no audio track.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from tests.media_fixtures import _add_audio_stream, _encode_audio

AUDIO_RATE = 16000


def syllable_envelope(seconds: float, seed: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """Envelope in [0, 1] with raised-cosine syllables of 0.12-0.25 s separated by 0.03-0.15 s pauses."""
    rng = np.random.default_rng(seed)
    env = np.zeros(round(seconds * rate))
    t = 0.1
    while t < seconds:
        length = rng.uniform(0.12, 0.25)
        start, stop = round(t * rate), min(env.size, round((t + length) * rate))
        if stop > start:
            env[start:stop] = np.sin(np.pi * np.arange(stop - start) / round(length * rate)) * rng.uniform(
                0.6, 1
            )
        t += length + rng.uniform(0.03, 0.15)
    return env


def speech_like(envelope: np.ndarray, rate: int = AUDIO_RATE) -> np.ndarray:
    t = np.arange(envelope.size) / rate
    buzz = sum(np.sin(2 * np.pi * 180 * h * t) / h for h in range(1, 6))
    return 0.3 * envelope * buzz / 2.3


def draw_face(
    height: int, width: int, opening: float, centre: tuple[float, float], face_width: float
) -> np.ndarray:
    """One RGB frame with a face of `face_width` px centred at (x, y) and the mouth `opening` in [0, 1]."""
    image = np.full((height, width, 3), 120, np.uint8)
    cx, cy = centre
    fw = face_width
    cv2.ellipse(
        image, (round(cx), round(cy)), (round(fw / 2), round(fw * 0.65)), 0, 0, 360, (224, 178, 146), -1
    )
    for side in (-1, 1):
        ex = round(cx + side * fw * 0.2)
        cv2.ellipse(
            image,
            (ex, round(cy - fw * 0.15)),
            (round(fw * 0.09), round(fw * 0.05)),
            0,
            0,
            360,
            (255, 255, 255),
            -1,
        )
        cv2.circle(image, (ex, round(cy - fw * 0.15)), round(fw * 0.04), (40, 30, 30), -1)
        cv2.line(
            image,
            (ex - round(fw * 0.1), round(cy - fw * 0.27)),
            (ex + round(fw * 0.1), round(cy - fw * 0.29)),
            (70, 50, 40),
            max(1, round(fw * 0.03)),
        )
    cv2.line(
        image,
        (round(cx), round(cy - fw * 0.08)),
        (round(cx - fw * 0.04), round(cy + fw * 0.12)),
        (170, 120, 100),
        max(1, round(fw * 0.02)),
    )
    mouth_h = max(1, round(fw * (0.02 + 0.14 * opening)))
    cv2.ellipse(
        image, (round(cx), round(cy + fw * 0.33)), (round(fw * 0.17), mouth_h), 0, 0, 360, (90, 20, 30), -1
    )
    return image


def talking_frames(
    envelope: np.ndarray, fps: float, size: tuple[int, int], face_width: float, rate: int = AUDIO_RATE
) -> np.ndarray:
    """(frames, H, W, 3) uint8: frame k's mouth opening = envelope at k / fps (floor(duration * fps) frames)."""
    height, width = size
    count = int(envelope.size / rate * fps)
    return np.stack(
        [
            draw_face(
                height,
                width,
                float(envelope[min(envelope.size - 1, round(k / fps * rate))]),
                (width / 2, height / 2),
                face_width,
            )
            for k in range(count)
        ]
    )


def write_talking_video(
    path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None, rate: int = AUDIO_RATE
) -> Path:
    """H.264 lossless MP4 of `frames` at `fps`, with `audio` (1-D float) as an AAC track, or no audio."""
    height, width = frames.shape[1:3]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=round(fps) if float(fps).is_integer() else fps,
            options={"qp": "0", "preset": "ultrafast"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio_stream = _add_audio_stream(container, "aac", 1, rate) if audio is not None else None
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio_stream is not None:
            _encode_audio(container, audio_stream, audio[None, :])
    return path


def talking_video_file(
    folder: Path,
    name: str,
    seconds: float,
    fps: float,
    size: tuple[int, int],
    *,
    seed: int,
    audio: bool = True,
) -> Path:
    """`folder / name`: a centred face 0.6 x the shorter side wide, mouth and audio on one seeded envelope."""
    envelope = syllable_envelope(seconds, seed=seed)
    frames = talking_frames(envelope, fps, size, min(size) * 0.6)
    return write_talking_video(folder / name, frames, fps, speech_like(envelope) if audio else None)

"""Textured test videos for the conditioner-encoder tests (resizing a solid colour would test nothing)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def make_textured_video(
    path: Path, seconds: float, *, fps: int = 25, size: tuple[int, int] = (48, 64)
) -> Path:
    """Lossless H.264 mp4 of moving noise-and-gradient frames, `size` = (height, width), seeded."""
    height, width = size
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3)).astype(np.float64)
    ramp = np.linspace(0, 255, width)[None, :, None]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264rgb", rate=fps, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        for index in range(round(seconds * fps)):
            image = (0.6 * np.roll(base, 3 * index, axis=1) + 0.4 * ramp).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_spiece_model(folder: Path, sentences: list[str]) -> Path:
    """A tiny unigram SentencePiece model with T5's special ids (pad 0, eos 1, unk 2, no bos)."""
    import sentencepiece

    text = folder / "corpus.txt"
    text.write_text(
        "\n".join(["a dog barks in the rain", "thunder and piano on a tin roof", *sentences] * 20)
    )
    sentencepiece.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(folder / "spiece"),
        vocab_size=40,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    return folder / "spiece.model"

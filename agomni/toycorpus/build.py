"""`build_corpus`: write the toy corpus (media files + one JSONL manifest per split).

Layout under ``out_dir``: ``<split>/manifest.jsonl``, ``<split>/audio/<id>.wav`` (the item's target
audio, mono 16-bit PCM, referenced as ``reference_audio``), ``<split>/audio/<id>_prompt.wav`` (tts
speaker prompts) and ``<split>/video/<id>.mp4`` (silent, 64x64, 8 fps). Splits: "train" and
"heldout"; ids are ``<task>-<split>-<index>``, so the splits never share an id.

Items per task (every item has ``duration`` = the requested seconds and ``meta`` saying how it was made):

- t2a: ``text`` = a caption from the grammar in `events`; meta.events lists each event's source,
  pitch word, frequency and onset/offset.
- v2a: a ball or square (one of four colours) bouncing on a floor or sliding between walls; an impact
  sound (shape -> timbre, colour -> pitch, `events.IMPACT_*`) starts at exactly each contact frame's
  time (frame / 8 s); ``text`` describes the scene; meta lists contact frames and times.
- tts: an utterance of one speaker (`recordings.SPEAKERS`) made of unchanged word recordings;
  ``text`` = the speaker's description; ``prompt_audio``/``prompt_text`` = another utterance (different
  transcript) of the same speaker; meta.words lists each recording file (relative to the recordings
  folder), onset and length.
- v2s: the same kind of utterance with a video of a face (speaker's colour) whose mouth opens with the
  speech RMS at each frame (`video.mouth_openings`); no prompt.
- t2song / v2song: a sung melody (`voice`) with ``lyrics`` = the words, ``text`` = style prompt such
  as "a slow song in C major"; the v2song video is a ball that lands on the floor on every note onset,
  arcs higher before higher notes, yellow for major and blue for minor keys.

Held out (the held-out split holds only combinations the train split never has; every word of them
is seen in train in other combinations):

- t2a: the (source, pitch) pairs `events.HELDOUT_PAIRS` (low chirp, high noise burst).
- v2a: the (shape, colour) pairs `V2A_HELDOUT_PAIRS` (green square, yellow ball).
- tts, v2s: (speaker, word) pairs: word i of a speaker's vocabulary (speaker j among the speakers of
  its language) is held out when (i + j) % 7 == 3 (`heldout_words`); train utterances never contain
  their speaker's held-out words, held-out utterances contain at least one. Prompts use train words.
- t2song, v2song: the (tempo, mode) styles `voice.HELDOUT_STYLES` (fast minor, slow major), and the
  lyrics also follow the (speaker, word) rule above.

Determinism: each (split, task) draws from ``numpy.random.default_rng([seed, split, task])``;
the same arguments give byte-identical manifests, audio and video files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from agomni.errors import UsageError
from agomni.manifest import TASKS

from . import events, video, voice
from .vocabulary import RECORDINGS_DIR, SPEAKERS, VOCABULARY, Recording, Vocabulary

SPLITS: tuple[str, ...] = ("train", "heldout")
#: (shape, colour) pairs only the held-out split's v2a items show.
V2A_HELDOUT_PAIRS: frozenset[tuple[str, str]] = frozenset({("square", "green"), ("ball", "yellow")})
_SCENE_CAPTIONS = {"bounce": "bouncing on the floor", "slide": "sliding between two walls"}


def heldout_words(speaker: str) -> set[str]:
    """Texts of `speaker`'s held-out words: word i, speaker j (among its language's) with (i + j) % 7 == 3."""
    language = SPEAKERS[speaker].language
    j = [name for name, spk in SPEAKERS.items() if spk.language == language].index(speaker)
    return {text for i, (text, _) in enumerate(VOCABULARY[language]) if (i + j) % 7 == 3}


@dataclass(frozen=True)
class _Context:
    root: Path
    split: str
    heldout: bool
    duration: float
    sample_rate: int
    vocab: Vocabulary

    @property
    def n_frames(self) -> int:
        return round(self.duration * video.FPS)


def _write_wav(ctx: _Context, name: str, audio: np.ndarray) -> str:
    """Write float audio (full scale 1.0) as 16-bit PCM (x * 32768, rounded, clipped) to audio/`name` of
    the split folder at the corpus rate; return the path relative to the split folder."""
    path = ctx.root / "audio" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(audio.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    sf.write(str(path), pcm, ctx.sample_rate, subtype="PCM_16", format="WAV")
    return f"{path.parent.name}/{path.name}"


def _write_video(ctx: _Context, item_id: str, frames: np.ndarray) -> str:
    path = video.write_mp4(ctx.root / "video" / f"{item_id}.mp4", frames)
    return f"video/{path.name}"


def _word_entries(ctx: _Context, placed: list[tuple[Recording, float]]) -> list[dict[str, Any]]:
    sr = ctx.sample_rate
    return [
        {
            "text": rec.text,
            "recording": rec.file,
            "onset_s": onset,
            "samples": len(ctx.vocab.audio(rec)),
            "duration_s": round(len(ctx.vocab.audio(rec)) / sr, 6),
        }
        for rec, onset in placed
    ]


def _speaker_words(ctx: _Context, speaker: str) -> tuple[set[str] | None, set[str] | None]:
    """(allowed, required) word texts for one utterance of `speaker` in this split."""
    held = heldout_words(speaker)
    if ctx.heldout:
        return None, held
    return {rec.text for rec in ctx.vocab.of_speaker(speaker)} - held, None


def _draw_speaker(ctx: _Context, rng: np.random.Generator) -> str:
    names = [name for name in SPEAKERS if ctx.vocab.of_speaker(name)]
    return names[int(rng.integers(len(names)))]


def _meta(ctx: _Context, heldout: list[str], **fields: Any) -> dict[str, Any]:
    return {"split": ctx.split, "generator": "agomni.toycorpus", "heldout_combinations": heldout, **fields}


def _make_t2a(ctx: _Context, item_id: str, rng: np.random.Generator) -> dict[str, Any]:
    phrases = events.draw_phrases(rng, ctx.heldout, events.max_events(ctx.duration))
    placed = events.layout_events(phrases, rng, ctx.duration, ctx.sample_rate)
    audio = events.render_events(placed, rng, ctx.duration, ctx.sample_rate)
    held = [f"{p.source} x {p.pitch}" for p in phrases if (p.source, p.pitch) in events.HELDOUT_PAIRS]
    return {
        "id": item_id,
        "task": "t2a",
        "text": events.caption(phrases),
        "reference_audio": _write_wav(ctx, f"{item_id}.wav", audio),
        "duration": ctx.duration,
        "meta": _meta(ctx, held, events=placed),
    }


def _make_v2a(ctx: _Context, item_id: str, rng: np.random.Generator) -> dict[str, Any]:
    pairs = [(s, c) for s in video.SHAPES for c in video.COLOURS]
    pairs = [p for p in pairs if (p in V2A_HELDOUT_PAIRS) == ctx.heldout]
    shape, colour = pairs[int(rng.integers(len(pairs)))]
    kind = ("bounce", "slide")[int(rng.integers(2))]
    min_gap = 3
    contacts: list[int] = []
    frame = 1 + int(rng.integers(3))
    n_impacts = 1 + int(rng.integers(4))
    while len(contacts) < n_impacts and frame <= ctx.n_frames - 2:
        contacts.append(frame)
        frame += min_gap + int(rng.integers(3))
    if kind == "bounce":
        heights = list(rng.uniform(20, 36, size=len(contacts) + 1))
        frames = video.render_bounce(shape, colour, contacts, heights, ctx.n_frames, rng)
    else:
        frames = video.render_slide(shape, colour, contacts, ctx.n_frames, rng)
    times = [c / video.FPS for c in contacts]
    audio = events.render_impacts(times, shape, colour, rng, ctx.duration, ctx.sample_rate)
    held = [f"{shape} x {colour}"] if ctx.heldout else []
    return {
        "id": item_id,
        "task": "v2a",
        "text": f"a {colour} {shape} {_SCENE_CAPTIONS[kind]}",
        "video": _write_video(ctx, item_id, frames),
        "reference_audio": _write_wav(ctx, f"{item_id}.wav", audio),
        "duration": ctx.duration,
        "meta": _meta(
            ctx,
            held,
            shape=shape,
            colour=colour,
            scene=kind,
            fps=video.FPS,
            impact_frames=contacts,
            impact_times_s=times,
            impact_source=events.IMPACT_SOURCES[shape],
            impact_frequency_hz=events.IMPACT_FREQUENCIES[colour],
        ),
    }


def _utterance(
    ctx: _Context, rng: np.random.Generator
) -> tuple[str, list[tuple[Recording, float]], list[str]]:
    speaker = _draw_speaker(ctx, rng)
    allowed, required = _speaker_words(ctx, speaker)
    placed = voice.draw_utterance(ctx.vocab, speaker, rng, ctx.duration, allowed, required)
    held = sorted({f"{speaker} x {rec.text}" for rec, _ in placed if rec.text in heldout_words(speaker)})
    return speaker, placed, held


def _make_tts(ctx: _Context, item_id: str, rng: np.random.Generator) -> dict[str, Any]:
    speaker, placed, held = _utterance(ctx, rng)
    language = SPEAKERS[speaker].language
    transcript = voice.join_words([rec.text for rec, _ in placed], language)
    train_words = {rec.text for rec in ctx.vocab.of_speaker(speaker)} - heldout_words(speaker)
    for _ in range(20):
        prompt = voice.draw_utterance(ctx.vocab, speaker, rng, ctx.duration, train_words)
        prompt_text = voice.join_words([rec.text for rec, _ in prompt], language)
        if prompt_text != transcript:
            break
    else:
        raise UsageError(f"{item_id}: found no prompt utterance that differs from the target")
    rec, onset = prompt[-1]
    prompt_duration = onset + len(ctx.vocab.audio(rec)) / ctx.sample_rate + voice.TAIL_S
    prompt_audio = voice.render_speech(ctx.vocab, prompt, prompt_duration)
    audio = voice.render_speech(ctx.vocab, placed, ctx.duration)
    return {
        "id": item_id,
        "task": "tts",
        "text": SPEAKERS[speaker].description,
        "transcript": transcript,
        "language": language,
        "reference_audio": _write_wav(ctx, f"{item_id}.wav", audio),
        "prompt_audio": _write_wav(ctx, f"{item_id}_prompt.wav", prompt_audio),
        "prompt_text": prompt_text,
        "duration": ctx.duration,
        "meta": _meta(
            ctx,
            held,
            speaker=speaker,
            words=_word_entries(ctx, placed),
            prompt_words=_word_entries(ctx, prompt),
        ),
    }


def _make_v2s(ctx: _Context, item_id: str, rng: np.random.Generator) -> dict[str, Any]:
    speaker, placed, held = _utterance(ctx, rng)
    language = SPEAKERS[speaker].language
    audio = voice.render_speech(ctx.vocab, placed, ctx.duration)
    openings = video.mouth_openings(audio, ctx.sample_rate, ctx.n_frames)
    frames, heights = video.render_mouth(speaker, openings)
    return {
        "id": item_id,
        "task": "v2s",
        "transcript": voice.join_words([rec.text for rec, _ in placed], language),
        "language": language,
        "video": _write_video(ctx, item_id, frames),
        "reference_audio": _write_wav(ctx, f"{item_id}.wav", audio),
        "duration": ctx.duration,
        "meta": _meta(
            ctx,
            held,
            speaker=speaker,
            words=_word_entries(ctx, placed),
            fps=video.FPS,
            mouth_heights_px=heights,
        ),
    }


def _song(ctx: _Context, rng: np.random.Generator) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Style, notes and held-out reasons of one song (recipe in `voice`)."""
    styles = [(t, m) for t in voice.TEMPI for m in voice.SCALES]
    styles = [s for s in styles if (s in voice.HELDOUT_STYLES) == ctx.heldout]
    tempo, mode = styles[int(rng.integers(len(styles)))]
    key = voice.KEYS[int(rng.integers(len(voice.KEYS)))]
    beat_frames = voice.TEMPI[tempo]
    beat_s = beat_frames / video.FPS
    first = 1
    onsets = []
    while (first + len(onsets) * beat_frames) / video.FPS + 0.9 * beat_s <= ctx.duration - voice.TAIL_S:
        onsets.append(first + len(onsets) * beat_frames)
    if not onsets:
        raise UsageError(f"duration {ctx.duration} s is too short for one {tempo} note")
    speaker = _draw_speaker(ctx, rng)
    allowed, required = _speaker_words(ctx, speaker)
    pool = [r for r in ctx.vocab.of_speaker(speaker) if allowed is None or r.text in allowed]
    words = [pool[int(rng.integers(len(pool)))] for _ in onsets]
    if required is not None:
        must = [r for r in ctx.vocab.of_speaker(speaker) if r.text in required]
        words[int(rng.integers(len(words)))] = must[int(rng.integers(len(must)))]
    f0 = float(np.median([rec.f0_hz for rec in ctx.vocab.of_speaker(speaker)]))
    midis = voice.draw_melody(rng, voice.tonic_midi(key, f0), mode, len(onsets))
    notes = [
        {
            "text": rec.text,
            "recording": rec.file,
            "midi": midi,
            "frequency_hz": round(voice.midi_to_hz(midi), 4),
            "onset_frame": onset,
            "onset_s": onset / video.FPS,
            "duration_s": beat_s,
        }
        for rec, midi, onset in zip(words, midis, onsets, strict=True)
    ]
    held = [f"{tempo} x {mode}"] if ctx.heldout else []
    held += sorted({f"{speaker} x {rec.text}" for rec in words if rec.text in heldout_words(speaker)})
    style = {
        "speaker": speaker,
        "speaker_f0_hz": round(f0, 3),
        "tempo": tempo,
        "bpm": 60 * video.FPS // beat_frames,
        "key": key,
        "mode": mode,
    }
    return style, notes, held


def _make_song(task: str) -> Callable[[_Context, str, np.random.Generator], dict[str, Any]]:
    def make(ctx: _Context, item_id: str, rng: np.random.Generator) -> dict[str, Any]:
        style, notes, held = _song(ctx, rng)
        speaker = style["speaker"]
        by_file = {rec.file: rec for rec in ctx.vocab.recordings}
        sung = [{**note, "recording": by_file[note["recording"]]} for note in notes]
        audio = voice.render_song(ctx.vocab, sung, style["speaker_f0_hz"], ctx.duration)
        language = SPEAKERS[speaker].language
        item: dict[str, Any] = {
            "id": item_id,
            "task": task,
            "text": voice.style_text(style["tempo"], style["key"], style["mode"]),
            "lyrics": voice.join_words([note["text"] for note in notes], language),
            "language": language,
        }
        if task == "v2song":
            tonic = min(note["midi"] for note in notes)
            # arc k ends on note k's onset and rises with that note's pitch; the last arc leaves the clip
            heights = [min(38.0, 16.0 + 1.5 * (note["midi"] - tonic)) for note in notes] + [20.0]
            colour = "yellow" if style["mode"] == "major" else "blue"
            contacts = [note["onset_frame"] for note in notes]
            frames = video.render_bounce("ball", colour, contacts, heights, ctx.n_frames, rng)
            item["video"] = _write_video(ctx, item_id, frames)
        item["reference_audio"] = _write_wav(ctx, f"{item_id}.wav", audio)
        item["duration"] = ctx.duration
        item["meta"] = _meta(ctx, held, **style, fps=video.FPS, notes=notes)
        return item

    return make


_MAKERS: dict[str, Callable[[_Context, str, np.random.Generator], dict[str, Any]]] = {
    "t2a": _make_t2a,
    "v2a": _make_v2a,
    "tts": _make_tts,
    "v2s": _make_v2s,
    "t2song": _make_song("t2song"),
    "v2song": _make_song("v2song"),
}


def build_corpus(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_train: int = 48,
    n_heldout: int = 12,
    duration: float = 2.0,
    sample_rate: int = 16000,
    recordings_dir: str | Path = RECORDINGS_DIR,
) -> dict[str, Path]:
    """Write the toy corpus into `out_dir` and return {split: path of its manifest.jsonl}.

    `n_train` / `n_heldout` items per task and split, each `duration` seconds of mono audio at
    `sample_rate` Hz (16-bit WAV). Contents, held-out rules and layout: module docstring. Raises
    `UsageError` for bad arguments (sizes < 1, duration outside [1, 10] s or not a multiple of 1/8 s,
    sample rate outside
    [8000, 48000] Hz) and `UnreadableMediaError` naming the path when the recordings are missing.
    """
    if n_train < 1 or n_heldout < 1:
        raise UsageError(f"n_train and n_heldout must be >= 1, got {n_train} and {n_heldout}")
    if not 1.0 <= duration <= 10.0 or abs(duration * video.FPS - round(duration * video.FPS)) > 1e-9:
        raise UsageError(
            f"duration must be between 1 and 10 seconds and a whole number of video frames "
            f"(a multiple of 1/{video.FPS} s), got {duration}"
        )
    if not 8000 <= sample_rate <= 48000:
        raise UsageError(f"sample_rate must be between 8000 and 48000 Hz, got {sample_rate}")
    vocab = Vocabulary(recordings_dir, sample_rate)
    out = Path(out_dir)
    manifests = {}
    for split_index, split in enumerate(SPLITS):
        ctx = _Context(out / split, split, split == "heldout", float(duration), sample_rate, vocab)
        ctx.root.mkdir(parents=True, exist_ok=True)
        count = n_train if split == "train" else n_heldout
        lines = []
        for task_index, task in enumerate(TASKS):
            rng = np.random.default_rng([seed, split_index, task_index])
            for index in range(count):
                item = _MAKERS[task](ctx, f"{task}-{split}-{index:03d}", rng)
                lines.append(json.dumps(_rounded(item), ensure_ascii=False))
        manifest = ctx.root / "manifest.jsonl"
        manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
        manifests[split] = manifest
    return manifests


def _rounded(value: Any) -> Any:
    """`value` with every float rounded to 6 decimals (stable, readable JSON)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {key: _rounded(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value

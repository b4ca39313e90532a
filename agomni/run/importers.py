"""Importers: the anchors' own test-set lists -> an agomni manifest in the run folder.

Each importer reads the list in the anchor's exact format from ``DATA_ROOT``, looks for every listed
item's media under ``DATA_ROOT``, writes ``RUN/agomni-<importer>.jsonl`` with the items found (each item
names ``data_root``, so its media paths resolve against the data root and may not leave it: no ``..``,
no symlink leading out), and returns it with an `ImportCoverage` naming each listed item that is missing
and why. Nothing is written into the data root: it may be read-only shared storage. A malformed line is
a `ManifestError` naming the file and line number. What the data root must hold is each importer's
``LAYOUT`` text below (``agomni suites SUITE`` prints it); a list not found points there.

Formats and layouts:
- ``seed-tts-eval``: ``meta.lst``, one ``utt|prompt_text|prompt_wav|text`` per line (BytedanceSpeech
  seed-tts-eval; the lists that carry ground truth add a fifth field ``|gt_wav``, as F5-TTS's reader
  accepts); prompt audio at ``prompt_wav`` (relative to the data root), ground truth (when present) at
  ``gt_wav``, else ``wavs/<utt>.wav``. Items: task tts, transcript = text, prompt_audio, prompt_text (left
  out when empty), language from the text's script (`agomni.manifest.language`: "zh" when it holds a Han
  character, else "en"; the prompt text's script when the text has no letters), whatever the folder is
  called. An empty text field is kept as an empty transcript: the speech metrics list that item as an error.
- ``f5-librispeech-pc``: F5-TTS's ``librispeech_pc_test_clean_cross_sentence.lst``, one
  ``ref_utt<TAB>ref_dur<TAB>ref_txt<TAB>gen_utt<TAB>gen_dur<TAB>gen_txt`` per line; audio in the
  LibriSpeech layout ``LibriSpeech/test-clean/<spk>/<chapter>/<utt>.flac``. Items: id gen_utt, task
  tts, transcript gen_txt, prompt_audio ref_utt's file with prompt_text ref_txt, reference_audio
  gen_utt's file, duration gen_dur.
- ``vggsound-test``: ``vggsound.csv`` (no header: ``youtube_id,start_seconds,label,split``), rows with
  split "test"; video at ``video/<youtube_id>_<start:06d>.mp4``, its audio track the reference. Items:
  task v2a, id ``<youtube_id>_<start:06d>``, duration 8 s (the av-benchmark length), meta label.
- ``audiocaps-test``: AudioCaps ``test.csv`` (header ``audiocap_id,youtube_id,start_time,caption``; five
  captions per clip); audio at ``audio/<youtube_id>_<start_time>.wav``. Items: one per clip (first
  caption in file order is the text, all five in meta), task t2a, duration 10 s.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agomni.atomic import atomic_write
from agomni.errors import ManifestError, UsageError
from agomni.manifest import Manifest, load_manifest
from agomni.manifest.language import script_language

Entry = dict[str, Any]
Parsed = tuple[list[Entry], list[tuple[str, str]], int]  # entries found, (id, reason) missing, listed


@dataclass(frozen=True)
class ImportCoverage:
    """Listed items (the anchor's list), published count (the suite's), found locally, and the rest."""

    importer: str
    listed: int
    published: int
    missing: tuple[tuple[str, str], ...] = ()
    notes: str = ""

    @property
    def found(self) -> int:
        return self.listed - len(self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "importer": self.importer,
            "published_items": self.published,
            "listed_items": self.listed,
            "found_items": self.found,
            "missing": [{"id": i, "reason": r} for i, r in self.missing],
            "notes": self.notes,
        }

    def summary(self) -> str:
        return (
            f"{self.found} of {self.listed} listed items found locally (published test set: {self.published} "
            f"items; importer {self.importer})"
        )


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found in the data root")
    return path


def _bad(path: Path, line: int, problem: str) -> ManifestError:
    return ManifestError(path, [f"line {line}: {problem}"])


def _check(root: Path, rel: str, item_id: str, what: str, missing: list[tuple[str, str]]) -> bool:
    if (root / rel).is_file():
        return True
    missing.append((item_id, f"not found locally: {what} {rel}"))
    return False


def parse_seed_tts(root: Path) -> Parsed:
    lst = _need(root / "meta.lst", "seed-tts-eval meta.lst")
    entries, missing, listed = [], [], 0
    form = "utt|prompt_text|prompt_wav|text or utt|prompt_text|prompt_wav|text|gt_wav"
    for number, line in enumerate(lst.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) not in (4, 5):
            raise _bad(lst, number, f"expected {form}, got {len(fields)} field(s)")
        empty = [
            name
            for name, i in (("utt", 0), ("prompt_wav", 2), ("gt_wav", 4))
            if i < len(fields) and not fields[i]
        ]
        if empty:
            raise _bad(lst, number, f"expected {form}: the field(s) {', '.join(empty)} are empty")
        utt, prompt_text, prompt_wav, text = fields[:4]
        truth = fields[4] if len(fields) == 5 else f"wavs/{utt}.wav"
        listed += 1
        if not _check(root, prompt_wav, utt, "prompt audio", missing):
            continue
        language = script_language(text) or script_language(prompt_text) or "en"
        entry = {
            "id": utt,
            "task": "tts",
            "transcript": text,
            "language": language,
            "prompt_audio": prompt_wav,
        }
        if prompt_text:
            entry["prompt_text"] = prompt_text
        if (root / truth).is_file():
            entry["reference_audio"] = truth
        entries.append(entry)
    return entries, missing, listed


SEED_TTS_LAYOUT = """\
DATA_ROOT/meta.lst              the seed-tts-eval list, one item per line (UTF-8):
                                utt|prompt_text|prompt_wav|text   or   utt|prompt_text|prompt_wav|text|gt_wav
DATA_ROOT/<prompt_wav>          the prompt audio, at the path the line gives (relative to DATA_ROOT)
DATA_ROOT/wavs/<utt>.wav        ground-truth audio, optional (or at <gt_wav> when the line has a fifth field)
example line:
  utt_0001|The prompt speaker reads this.|prompt-wavs/utt_0001.wav|Please say this sentence next.
"""


def _librispeech_file(utt: str) -> str:
    speaker, chapter, _ = utt.split("-")
    return f"LibriSpeech/test-clean/{speaker}/{chapter}/{utt}.flac"


def parse_librispeech_pc(root: Path) -> Parsed:
    lst = _need(root / "librispeech_pc_test_clean_cross_sentence.lst", "F5-TTS cross-sentence list")
    entries, missing, listed = [], [], 0
    for number, line in enumerate(lst.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            ref_utt, _, ref_txt, gen_utt, gen_dur, gen_txt = fields
            duration = float(gen_dur)
            ref_file, gen_file = _librispeech_file(ref_utt), _librispeech_file(gen_utt)
        except ValueError:
            raise _bad(
                lst,
                number,
                "expected ref_utt, ref_dur, ref_txt, gen_utt, gen_dur, gen_txt separated by tabs, "
                "utterance ids as speaker-chapter-utterance and numeric durations",
            ) from None
        listed += 1
        if not _check(root, ref_file, gen_utt, "prompt audio", missing):
            continue
        entry = {"id": gen_utt, "task": "tts", "transcript": gen_txt, "language": "en", "duration": duration}
        entry.update(prompt_audio=ref_file, prompt_text=ref_txt)
        if (root / gen_file).is_file():
            entry["reference_audio"] = gen_file
        entries.append(entry)
    return entries, missing, listed


LIBRISPEECH_PC_LAYOUT = """\
DATA_ROOT/librispeech_pc_test_clean_cross_sentence.lst   F5-TTS's list, one item per line, six fields
                                separated by tabs: ref_utt ref_dur ref_txt gen_utt gen_dur gen_txt
DATA_ROOT/LibriSpeech/test-clean/<speaker>/<chapter>/<utt>.flac   the LibriSpeech audio (utt =
                                speaker-chapter-utterance); ref_utt's file is the prompt, gen_utt's the
                                ground truth (optional)
example line (<TAB> is a tab character):
  1089-134686-0000<TAB>10.4<TAB>He hoped there would be stew.<TAB>1089-134686-0001<TAB>3.1<TAB>Stuff it into you.
"""


def parse_vggsound(root: Path) -> Parsed:
    table = _need(root / "vggsound.csv", "VGGSound vggsound.csv")
    entries, missing, listed = [], [], 0
    with table.open(newline="", encoding="utf-8") as fh:
        for number, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            try:
                ytid, start, label, split = row
                item_id = f"{ytid}_{int(start):06d}"
            except ValueError:
                raise _bad(table, number, "expected youtube_id,start_seconds,label,split") from None
            if split != "test":
                continue
            listed += 1
            video = f"video/{item_id}.mp4"
            if _check(root, video, item_id, "video", missing):
                entry = {
                    "id": item_id,
                    "task": "v2a",
                    "video": video,
                    "reference_audio": video,
                    "duration": 8.0,
                }
                entries.append({**entry, "meta": {"label": label}})
    return entries, missing, listed


VGGSOUND_LAYOUT = """\
DATA_ROOT/vggsound.csv          VGGSound's list, no header, one clip per row:
                                youtube_id,start_seconds,label,split   (rows with split "test" are read)
DATA_ROOT/video/<youtube_id>_<start_seconds as 6 digits>.mp4   the clip with its audio track (the reference)
example row and its video:
  ---g-f_I2yQ,1,people marching,test   ->   video/---g-f_I2yQ_000001.mp4
"""


def parse_audiocaps(root: Path) -> Parsed:
    table = _need(root / "test.csv", "AudioCaps test.csv")
    clips: dict[str, Entry] = {}
    missing: list[tuple[str, str]] = []
    with table.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["audiocap_id", "youtube_id", "start_time", "caption"]:
            raise _bad(table, 1, "expected the header audiocap_id,youtube_id,start_time,caption")
        for number, row in enumerate(reader, start=2):
            try:
                _, ytid, start, caption = row
                item_id = f"{ytid}_{int(start)}"
            except ValueError:
                raise _bad(table, number, "expected audiocap_id,youtube_id,start_time,caption") from None
            if item_id in clips:
                clips[item_id]["meta"]["captions"].append(caption)
                continue
            entry = {"id": item_id, "task": "t2a", "text": caption, "reference_audio": f"audio/{item_id}.wav"}
            clips[item_id] = {**entry, "duration": 10.0, "meta": {"captions": [caption]}}
    entries = [e for e in clips.values() if _check(root, e["reference_audio"], e["id"], "audio", missing)]
    return entries, missing, len(clips)


AUDIOCAPS_LAYOUT = """\
DATA_ROOT/test.csv              AudioCaps' test list with its header line
                                audiocap_id,youtube_id,start_time,caption   (five captions per clip)
DATA_ROOT/audio/<youtube_id>_<start_time>.wav   the clip's reference audio
example row and its audio:
  103549,7fmOlUlwoNg,20,Constant rattling noise   ->   audio/7fmOlUlwoNg_20.wav
"""


@dataclass(frozen=True)
class Importer:
    """An anchor's list reader and the layout of the data root it expects."""

    parse: Callable[[Path], Parsed]
    layout: str


IMPORTERS: dict[str, Importer] = {
    "seed-tts-eval": Importer(parse_seed_tts, SEED_TTS_LAYOUT),
    "f5-librispeech-pc": Importer(parse_librispeech_pc, LIBRISPEECH_PC_LAYOUT),
    "vggsound-test": Importer(parse_vggsound, VGGSOUND_LAYOUT),
    "audiocaps-test": Importer(parse_audiocaps, AUDIOCAPS_LAYOUT),
}


def import_test_set(
    importer: str, data_root: Path, dest: Path, published: int, suite: str | None = None
) -> tuple[Manifest, ImportCoverage]:
    """Run `importer` on `data_root` and write its manifest into folder `dest` (module docstring);
    `suite` names the suite whose layout the "not found" errors point at."""
    root = Path(os.path.abspath(data_root))
    layout = f"`agomni suites {suite}` prints the layout {importer} expects" if suite else ""
    see = f"; {layout}" if layout else f" (layout:\n{IMPORTERS[importer].layout})"
    if not root.is_dir():
        raise UsageError(f"--data-root {data_root}: not a folder{see}")
    try:
        entries, missing, listed = IMPORTERS[importer].parse(root)
    except UsageError as err:
        raise UsageError(f"{err}{see}") from err
    if not entries:
        raise UsageError(
            f"{root}: none of the {listed} listed items were found locally (importer {importer}){see}"
        )
    target = Path(dest) / f"agomni-{importer}.jsonl"
    text = "".join(json.dumps({**e, "data_root": str(root)}, ensure_ascii=False) + "\n" for e in entries)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as err:
        raise UsageError(f"{target}: cannot write the imported manifest into the run folder ({err})") from err
    return load_manifest(target), ImportCoverage(importer, listed, published, tuple(missing))

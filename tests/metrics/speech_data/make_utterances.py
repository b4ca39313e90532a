"""Regenerate the committed test utterances with espeak-ng (run once; tests never call espeak-ng).

    apt-get install -y espeak-ng
    PYTHONPATH=. python tests/metrics/speech_data/make_utterances.py

Each sentence of SENTENCES is spoken by the voices of VOICES (espeak-ng voice, pitch, words per
minute): ``f2`` (en-us+f2, the voice on which pocketsphinx's default English model does best among those
tried) speaks all of them, ``m1`` (the toy-corpus voice en_m1) the first three, for the speaker tests.
Each is processed with the toy corpus recipe (22.05 -> 16 kHz, silence trimmed, peak 0.7) and written
as 16 kHz 16-bit mono FLAC, listed in ``utterances.tsv``. Made with eSpeak NG 1.51 (Debian espeak-ng
1.51+dfsg-10+deb12u2); another version may give other samples.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from agomni.toycorpus.vocabulary import RECORDING_RATE, _prepare

HERE = Path(__file__).parent
SENTENCES = (
    "the president of the united states will visit the city next week",
    "we need to talk about the money in the bank account",
    "the weather is going to be very cold tomorrow morning",
    "she said that the children were playing in the garden",
    "i think we should go home now because it is late",
    "the company reported strong sales in the first quarter of the year",
    "please call me back when you have a minute",
    "there are many people waiting at the train station",
)
#: name -> (espeak-ng voice, pitch 0-99, words per minute, how many of SENTENCES it speaks)
VOICES = {"f2": ("en-us+f2", 65, 130, len(SENTENCES)), "m1": ("en-us+m3", 40, 150, 3)}


def main() -> None:
    rows = ["file\tspeaker\ttext"]
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "utt.wav"
        for name, (voice, pitch, speed, count) in VOICES.items():
            for index, text in enumerate(SENTENCES[:count]):
                command = [
                    "espeak-ng",
                    "-v",
                    voice,
                    "-p",
                    str(pitch),
                    "-s",
                    str(speed),
                    "-w",
                    str(raw_path),
                    text,
                ]
                subprocess.run(command, check=True, capture_output=True)
                raw, rate = sf.read(str(raw_path), dtype="float64", always_2d=True)
                audio = _prepare(raw[:, 0], rate)
                file = f"{name}_{index}.flac"
                sf.write(str(HERE / file), np.round(audio * 32767).astype(np.int16), RECORDING_RATE, "PCM_16")
                rows.append(f"{file}\t{name}\t{text}")
    (HERE / "utterances.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

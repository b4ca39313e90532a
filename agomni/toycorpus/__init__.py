"""A procedural, seeded toy corpus covering all six tasks, small enough to train a tiny MMDiT on CPU.

`build_corpus(out_dir, seed=...)` writes a train and a held-out split (JSONL manifests + WAV/MP4
media); ``python -m agomni.toycorpus OUT_DIR [--seed N]`` does the same from the shell. Speech and
singing come from committed espeak-ng word recordings (`RECORDINGS_DIR`), regenerated only by
`record_vocabulary()`. See `agomni.toycorpus.build` for what each task's items hold and what is held out.
"""

from .build import SPLITS, V2A_HELDOUT_PAIRS, build_corpus, heldout_words
from .vocabulary import RECORDINGS_DIR, SPEAKERS, VOCABULARY, Vocabulary, record_vocabulary

__all__ = [
    "RECORDINGS_DIR",
    "SPEAKERS",
    "SPLITS",
    "V2A_HELDOUT_PAIRS",
    "VOCABULARY",
    "Vocabulary",
    "build_corpus",
    "heldout_words",
    "record_vocabulary",
]

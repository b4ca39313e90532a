"""msclap 1.3.4's ``CLAPWrapper(version='2023')`` built offline, for the equality tests of our MS-CLAP.

msclap is installed with ``--no-deps`` (it declares transformers<5 and librosa<0.11; the classes used here
run with the stack's versions). Offline, msclap would fetch its checkpoint, GPT-2 and GPT-2's tokenizer
from the Hugging Face hub and read audio with ``torchaudio.load`` (which needs torchcodec, absent from the
stack). Exactly those calls are replaced:

- the checkpoint: ``CLAPWrapper(model_fp=...)`` reads a file written here from msclap's own randomly
  initialised ``CLAP`` (weights moved off their initialisation, BatchNorm statistics included);
- ``AutoModel.from_pretrained('gpt2')``: a randomly initialised ``GPT2Model`` of a small GPT-2 config
  (2 layers; width 768, which msclap's ``transformer_embed_dim`` fixes);
- ``AutoTokenizer.from_pretrained('gpt2')``: ``transformers``' GPT-2 tokenizer from a small byte-level
  BPE vocabulary laid out as GPT-2's (the 256 byte symbols first, so ``'!'`` is id 0; ``<|endoftext|>``
  last), trained here;
- ``encode_plus`` (gone in transformers 5): see `gpt2_tokenizer`;
- ``torchaudio.load``: soundfile's float32 read (the same values for PCM files);
- ``random.randrange`` (msclap's crop offset for clips over 7 s): 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
import soundfile as sf
import torch

transformers = pytest.importorskip("transformers", reason="msclap's reference model needs transformers")
pytest.importorskip("torchlibrosa", reason="msclap's HTSAT needs torchlibrosa")

from agomni.metrics.embedders.roberta_bpe import bytes_to_unicode  # noqa: E402

SMALL_GPT2 = {"n_layer": 2, "n_head": 12, "n_embd": 768, "n_positions": 1024}
CORPUS = [
    "A dog barks while a man's car engine revs up.",
    "Rain falls on a tin roof; thunder rumbles in the distance!",
    "Birds chirp and tweet, 1234 times. They'll sing, we're sure.",
    "Ein Hund bellt über 3½ Minuten. Naïve café music 你好",
] * 20


def write_gpt2_vocabulary(folder: Path) -> Path:
    """vocab.json / merges.txt of a small byte-level BPE (``tokenizers``) in GPT-2's id layout, plus the
    tokenizer_config.json that makes ``AutoTokenizer`` build GPT-2's tokenizer from them."""
    tokenizers = pytest.importorskip("tokenizers", reason="builds the small test vocabulary")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=420, min_frequency=2, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    merges = [
        line.split()
        for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#version")
    ]
    tokens = list(bytes_to_unicode().values())
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    tokens.append("<|endoftext|>")
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    config = {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False, "model_max_length": 1024}
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, **special}))
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": len(tokens)}))
    return folder


def gpt2_tokenizer(folder: Path):
    """``transformers``' GPT-2 tokenizer from ``folder`` (see `write_gpt2_vocabulary`). transformers 5
    dropped ``encode_plus``, which msclap calls; for one text it was ``__call__`` with the same arguments
    (same padding and truncation rules), so the instance gets that name back."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    if not hasattr(tokenizer, "encode_plus"):
        tokenizer.encode_plus = tokenizer.__call__
    return tokenizer


def _read_pcm(path, *args, **kwargs):
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), rate


@contextmanager
def upstream_wrapper(tmp: Path, tokenizer_dir: Path, *, seed: int = 11) -> Iterator[object]:
    """(inside the block) msclap's ``CLAPWrapper(version='2023')`` with random weights built as the module
    docstring says; ``wrapper.state`` is the state dict it loaded (msclap's key names)."""
    msclap_clap = pytest.importorskip("msclap.models.clap", reason="msclap 1.3.4 is the reference")
    from msclap import CLAPWrapper as wrapper_module

    vocab = len(json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8")))
    ends = {"bos_token_id": vocab - 1, "eos_token_id": vocab - 1}  # <|endoftext|>, the last id
    config = transformers.GPT2Config(vocab_size=vocab, **ends, **SMALL_GPT2)
    tokenizer = gpt2_tokenizer(tokenizer_dir)  # built before AutoTokenizer is patched
    with (
        mock.patch.object(msclap_clap.AutoModel, "from_pretrained", lambda *a, **k: transformers.GPT2Model(config)),
        mock.patch.object(wrapper_module.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer),
        mock.patch.object(wrapper_module.torchaudio, "load", _read_pcm),
        mock.patch.object(wrapper_module.random, "randrange", lambda *a, **k: 0),
    ):  # fmt: skip
        torch.manual_seed(seed)
        model = msclap_clap.CLAP(
            audioenc_name="HTSAT", sample_rate=44100, window_size=1024, hop_size=320, mel_bins=64, fmin=50,
            fmax=8000, classes_num=527, out_emb=768, text_model="gpt2", transformer_embed_dim=768, d_proj=1024,
        )  # fmt: skip
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, v in model.state_dict().items():
                if not v.is_floating_point() or "extractor" in name or "attn_mask" in name:
                    continue
                if name.endswith("running_var"):
                    v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
                else:
                    v.add_(torch.randn(v.shape, generator=gen) * 0.05)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        checkpoint = tmp / "CLAP_weights_2023.pth"
        torch.save({"model": state}, checkpoint)
        wrapper = wrapper_module.CLAPWrapper(model_fp=str(checkpoint), version="2023", use_cuda=False)
        wrapper.state = state
        yield wrapper

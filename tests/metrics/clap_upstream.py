"""laion-clap 1.1.7's ``CLAP_Module`` built offline, for the equality tests of our CLAP towers.

laion-clap is installed with ``--no-deps`` (it declares numpy<2) plus its real needs. Offline, building
``CLAP_Module`` would fetch RoBERTa and three tokenizers from the Hugging Face hub, so exactly those
``from_pretrained`` calls are replaced: RoBERTa by a randomly initialised ``RobertaModel`` of the given
config (roberta-base's own config when the text tower is compared; laion-clap hard-codes its 768-wide
``text_projection``), the tokenizers by ``None`` (``roberta_tokenizer`` sets the one the text tests use,
``RobertaTokenizer`` from local ``vocab.json`` / ``merges.txt``).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="laion-clap's reference model needs transformers")
pytest.importorskip("torchlibrosa", reason="laion-clap's reference model needs torchlibrosa")

#: roberta-base's config.json (the hub's), as laion-clap's ``RobertaModel.from_pretrained('roberta-base')``
#: builds it.
ROBERTA_BASE = {
    "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
    "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
}  # fmt: skip
TINY_ROBERTA = {
    "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 37, "max_position_embeddings": 80,
}  # fmt: skip


def build_upstream(amodel: str, roberta: dict[str, int] | None = None, *, perturb_text: bool = False):
    """``laion_clap.CLAP_Module(enable_fusion=False, amodel=...)`` built offline (see the module docstring)
    with random audio weights (everything but the fixed front end and index buffers moved off its
    initialisation) and, with ``perturb_text``, random text weights likewise (biases and LayerNorms too)."""
    cfg = transformers.RobertaConfig(**(roberta or TINY_ROBERTA))
    none = classmethod(lambda cls, *a, **k: None)
    with (
        mock.patch.object(
            transformers.RobertaModel, "from_pretrained", lambda *a, **k: transformers.RobertaModel(cfg)
        ),
        mock.patch.object(transformers.RobertaTokenizer, "from_pretrained", none),
        mock.patch.object(transformers.BertTokenizer, "from_pretrained", none),
        mock.patch.object(transformers.BartTokenizer, "from_pretrained", none),
    ):
        laion_clap = pytest.importorskip(
            "laion_clap", reason="laion-clap 1.1.7 is the reference implementation"
        )
        module = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device="cpu")
    gen = torch.Generator().manual_seed(7)
    groups = ("audio", "text") if perturb_text else ("audio",)
    with torch.no_grad():
        for name, v in module.model.state_dict().items():
            if not name.startswith(groups) or not v.is_floating_point():
                continue
            if "extractor" in name or "attn_mask" in name:
                continue
            if name.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
            else:
                v.add_(torch.randn(v.shape, generator=gen) * (0.02 if name.startswith("text") else 0.05))
    return module.eval()


def roberta_tokenizer(folder: Path):
    """``RobertaTokenizer`` from ``folder``'s vocab.json / merges.txt, with roberta-base's published
    ``<mask>`` setting (lstrip)."""
    mask = transformers.AddedToken("<mask>", lstrip=True, rstrip=False)
    return transformers.RobertaTokenizer.from_pretrained(str(folder), mask_token=mask)


def train_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A small byte-level BPE vocabulary (``tokenizers``, ~400 tokens, RoBERTa's special tokens first)
    written as ``folder/vocab.json`` and ``folder/merges.txt``."""
    tokenizers = pytest.importorskip("tokenizers", reason="builds the small test vocabulary")
    corpus = [
        "A dog barks while a man's car engine revs up.",
        "Rain falls on a tin roof; thunder rumbles in the distance!",
        "Birds chirp and tweet, 1234 times. They'll sing, we're sure.",
        "Ein Hund bellt über 3½ Minuten. Naïve café music 你好",
    ] * 20
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=400, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    return folder / "vocab.json", folder / "merges.txt"

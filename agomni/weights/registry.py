"""Every checkpoint agomni's metrics or reference model use, as typed data.

Each entry names its download URL, size, licence, the metrics that need it, and the checksum its
publisher gives, with where that checksum was found. Hashes are never invented: an entry whose
publisher gives no checksum is *unpinned*, and its SHA-256 is recorded the first time the file
enters the cache (trust on first use) and checked on every later load (see `store.py`).

Pin kinds:
- ``sha256``: the full SHA-256 published by the host (Hugging Face LFS object id, a URL path).
- ``sha256-prefix``: a torch-hub file name carries the first hex digits of the SHA-256; the prefix
  is checked and the full SHA-256 recorded on first use.
- ``md5``: the host publishes only an MD5 (Zenodo, some release scripts); the MD5 is checked and
  the SHA-256 recorded on first use.

Sizes are in bytes. `size_exact` is False where the host only shows a rounded size (e.g. "2.35 GB"
on a Hugging Face page): such a size is shown with "~" and never used to reject a download.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ..errors import UnknownWeightsError

PinKind = Literal["sha256", "sha256-prefix", "md5"]

_HEX = re.compile(r"^[0-9a-f]+$")
_PIN_LENGTHS: dict[str, tuple[int, ...]] = {
    "sha256": (64,),
    "md5": (32,),
    "sha256-prefix": tuple(range(6, 64)),
}


@dataclass(frozen=True)
class Pin:
    """A checksum published by a trustworthy source, and where it was found."""

    kind: PinKind
    value: str
    source: str

    def __post_init__(self) -> None:
        if self.kind not in _PIN_LENGTHS:
            raise ValueError(f"unknown pin kind {self.kind!r}")
        if not _HEX.match(self.value) or len(self.value) not in _PIN_LENGTHS[self.kind]:
            raise ValueError(f"{self.kind} pin {self.value!r} is not lowercase hex of the right length")
        if not self.source.strip():
            raise ValueError("a pin must say where its checksum was published")

    def describe(self) -> str:
        """One-line human form, e.g. ``sha256 e5b1...`` or ``md5 362f... (+ SHA-256 on first use)``."""
        if self.kind == "sha256":
            return f"sha256 {self.value}"
        if self.kind == "md5":
            return f"md5 {self.value} (+ sha256 recorded on first use)"
        return f"sha256 prefix {self.value} (+ full sha256 recorded on first use)"


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint file.

    `url` is None where no direct download exists (files produced by ``agomni train``, files behind
    a Google Drive viewer); `manual` then says how to obtain the file, and ``agomni weights import``
    brings it into the cache. `state_dict_key` names the wrapper key holding the tensors inside the
    checkpoint (e.g. ``"model"`` for PANNs, ``"model_state_dict"`` for Whisper), or None when the file
    is a plain ``{name: tensor}`` mapping.
    """

    name: str
    filename: str
    url: str | None
    size_bytes: int | None
    size_exact: bool
    licence: str
    metrics: tuple[str, ...]
    pin: Pin | None
    checksum_search: str
    state_dict_key: str | None = None
    manual: str | None = None
    notes: str = ""
    extra_urls: tuple[str, ...] = field(default=())

    @property
    def pinned(self) -> bool:
        return self.pin is not None


def _hf(repo: str, path: str) -> str:
    return f"https://huggingface.co/{repo}/resolve/main/{path}"


_ZENODO_PANNS = "https://zenodo.org/records/3987831/files/"
_PANNS_LICENCE = "CC-BY-4.0 (Zenodo record 3987831)"
_PANNS_MD5_SOURCE = "Zenodo record 3987831 file listing (md5), as quoted by several reference codes"
_CLAP_LICENCE = "CC0-1.0 (huggingface.co/lukewys/laion_clap model card)"
_ECAPA_SB = "speechbrain/spkrec-ecapa-voxceleb"
_ECAPA_SB_LICENCE = "Apache-2.0 (huggingface.co/speechbrain/spkrec-ecapa-voxceleb model card)"
_PARAFORMER_ZH = (
    "https://modelscope.cn/models/iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
    "/resolve/master"
)
_PARAFORMER_LICENCE = "FunASR model licence (modelscope/FunASR MODEL_LICENSE, named by the model card)"
_MUQ_LICENCE = (
    "CC-BY-NC-4.0 (tencent-ailab/MuQ README 'License': the model weights, LICENSE_weights; the code is MIT): "
    "non-commercial use only"
)
_AGOMNI_MANUAL = "produced by `agomni train` (no published file yet); bring a trained checkpoint in with " + (
    "`agomni weights import NAME PATH`"
)

_ENTRIES: tuple[WeightsEntry, ...] = (
    WeightsEntry(
        name="vggish",
        filename="vggish-10086976.pth",
        url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
        size_bytes=None,
        size_exact=False,
        licence="Apache-2.0 (torchvggish 0.2 package metadata; port of Google's VGGish in tensorflow/models)",
        metrics=("FD_VGG / FAD-VGGish (av-benchmark, audioldm_eval)",),
        pin=Pin("sha256-prefix", "10086976", "torch-hub file name prefix (first 8 hex of the SHA-256)"),
        checksum_search="only the torch-hub file-name prefix is published; the full SHA-256 is recorded "
        "on first use. No size is published on the release page text found.",
    ),
    WeightsEntry(
        name="panns-cnn14-16k",
        filename="Cnn14_16k_mAP=0.438.pth",
        url=_ZENODO_PANNS + "Cnn14_16k_mAP%3D0.438.pth?download=1",
        size_bytes=358_668_570,
        size_exact=False,
        licence=_PANNS_LICENCE,
        metrics=("FD_PANNs, KL_PANNs, IS_PANNs at 16 kHz (av-benchmark, audioldm_eval)",),
        pin=Pin("md5", "362fc5ff18f1d6ad2f6d464b45893f2c", _PANNS_MD5_SOURCE),
        checksum_search="Zenodo lists md5 only; SHA-256 recorded on first use. Size 358668570 B is the "
        "Zenodo metadata as quoted in a third-party analysis, so it is shown but not enforced (the md5 is).",
        state_dict_key="model",
    ),
    WeightsEntry(
        name="panns-cnn14-32k",
        filename="Cnn14_mAP=0.431.pth",
        url=_ZENODO_PANNS + "Cnn14_mAP%3D0.431.pth?download=1",
        size_bytes=327_000_000,
        size_exact=False,
        licence=_PANNS_LICENCE,
        metrics=("FD_PANNs / KL at 32 kHz (panns_inference default)",),
        pin=Pin(
            "md5",
            "541141fa2ee191a88f24a3219fff024e",
            _PANNS_MD5_SOURCE + "; Labbeti/dcase2022task6a nn/urls.py ('Hash type: md5')",
        ),
        checksum_search="Zenodo lists md5 only; SHA-256 recorded on first use. Size '327 MB' from a "
        "Hugging Face mirror listing (rounded).",
        state_dict_key="model",
    ),
    WeightsEntry(
        name="passt-s-swa-p16-128-ap476",
        filename="passt-s-f128-p16-s10-ap.476-swa.pt",
        url="https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/"
        "passt-s-f128-p16-s10-ap.476-swa.pt",
        size_bytes=329_000_000,
        size_exact=False,
        licence="Apache-2.0 (hear21passt 0.0.26 package metadata, kkoutini's PaSST release)",
        metrics=("FD_PaSST, KL_PaSST, IS_PaSST (av-benchmark; hear21passt passt_s_swa_p16_128_ap476)",),
        pin=None,
        checksum_search="looked in kkoutini/PaSST and hear21passt default_cfgs: URL only, no checksum; "
        "size '~329 MB' from a third-party setup script (rounded). Unpinned: trust on first use.",
    ),
    WeightsEntry(
        name="laion-clap-630k-audioset-best",
        filename="630k-audioset-best.pt",
        url=_hf("lukewys/laion_clap", "630k-audioset-best.pt"),
        size_bytes=1_860_000_000,
        size_exact=False,
        licence=_CLAP_LICENCE,
        metrics=("CLAP score / FAD-CLAP with HTSAT-tiny (fadtk clap-laion-audio)",),
        pin=Pin(
            "sha256",
            "8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
            "Hugging Face LFS object id, huggingface.co/lukewys/laion_clap/blob/main/630k-audioset-best.pt",
        ),
        checksum_search="HF LFS SHA-256; size '1.86 GB' from the HF page (rounded).",
        state_dict_key="state_dict",
        notes="pickle holds numpy scalars next to the tensors (HF scan: numpy.core.multiarray.scalar), so "
        "the safe loader refuses it unless allow_pickle=True; keys carry a 'module.' prefix.",
    ),
    WeightsEntry(
        name="laion-clap-music-audioset-90.14",
        filename="music_audioset_epoch_15_esc_90.14.pt",
        url=_hf("lukewys/laion_clap", "music_audioset_epoch_15_esc_90.14.pt"),
        size_bytes=2_350_000_000,
        size_exact=False,
        licence=_CLAP_LICENCE,
        metrics=("CLAP score / FAD-CLAP with HTSAT-base, music (fadtk clap-laion-music)",),
        pin=None,
        checksum_search="the publisher's LFS hash for this file is not recorded here; "
        "only a third-party Space copy's LFS hash is known, which is not the publisher's, so unpinned "
        "(trust on first use). Size '2.35 GB' (rounded).",
        state_dict_key="state_dict",
        notes="pickle holds numpy scalars (HF scan), refused by the safe loader unless allow_pickle=True.",
    ),
    WeightsEntry(
        name="laion-clap-music-speech-audioset-89.98",
        filename="music_speech_audioset_epoch_15_esc_89.98.pt",
        url=_hf("lukewys/laion_clap", "music_speech_audioset_epoch_15_esc_89.98.pt"),
        size_bytes=2_350_000_000,
        size_exact=False,
        licence=_CLAP_LICENCE,
        metrics=("LAION_CLAP score (av-benchmark, MMAudio, GenAU)",),
        pin=Pin(
            "sha256",
            "51c68f12f9d7ea25fdaaccf741ec7f81e93ee594455410f3bca4f47f88d8e006",
            "Hugging Face LFS object id, huggingface.co/lukewys/laion_clap/blob/4226474/"
            "music_speech_audioset_epoch_15_esc_89.98.pt",
        ),
        checksum_search="HF LFS SHA-256 (also an md5 d0dce80705ee4f79da5a1ff56ccde6f9 in a fork of "
        "MMAudio's download_utils.py, not used). Size '2.35 GB' (rounded).",
        state_dict_key="state_dict",
        notes="pickle holds numpy scalars (HF scan), refused by the safe loader unless allow_pickle=True.",
    ),
    *(
        WeightsEntry(
            name=f"roberta-base-{part}",
            filename=filename,
            url=_hf("FacebookAI/roberta-base", filename),
            size_bytes=size,
            size_exact=False,
            licence="MIT (huggingface.co/FacebookAI/roberta-base model card)",
            metrics=(
                f"CLAP score: the {part} file of the RoBERTa tokenizer laion-clap loads ('roberta-base')",
            ),
            pin=None,
            checksum_search="a plain git file (not LFS) on the hub, so the publisher shows no SHA-256; "
            f"unpinned (trust on first use). A third-party Nix derivation packaging laion-clap 1.1.7 "
            f"fetches this URL with sha256 {third_party} (not the publisher's, so not a pin). Size "
            f"'{size // 1000} kB' (rounded).",
            notes="tokenizer file, not a checkpoint (agomni.metrics.embedders.roberta_bpe reads it).",
        )
        for part, filename, size, third_party in (
            (
                "vocab",
                "vocab.json",
                899_000,
                "9e7f63c2d15d666b52e21d250d2e513b87c9b713cfa6987a82ed89e5e6e50655",
            ),
            (
                "merges",
                "merges.txt",
                456_000,
                "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            ),
        )
    ),
    WeightsEntry(
        name="whisper-large-v3",
        filename="large-v3.pt",
        url="https://openaipublic.azureedge.net/main/whisper/models/"
        "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb/large-v3.pt",
        size_bytes=3_087_371_615,
        size_exact=True,
        licence="MIT (openai/whisper)",
        metrics=("WER, seed-tts-eval EN recipe (Whisper-large-v3, greedy, forced English)",),
        pin=Pin(
            "sha256",
            "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb",
            "openai/whisper whisper/__init__.py _MODELS URL path (checked there by whisper's _download)",
        ),
        checksum_search="SHA-256 in the URL path. Size 3087371615 B as listed by several independent "
        "downloads of this file (consistent with HF's '3.09 GB').",
        state_dict_key="model_state_dict",
        notes="the checkpoint also holds 'dims' (model dimensions, plain ints) next to 'model_state_dict'.",
    ),
    *(
        WeightsEntry(
            name=f"paraformer-zh-{part}",
            filename=filename,
            url=f"{_PARAFORMER_ZH}/{filename}",
            size_bytes=None,
            size_exact=False,
            licence=_PARAFORMER_LICENCE,
            metrics=(f"CER, seed-tts-eval ZH recipe (Paraformer-zh through funasr): {role}",),
            pin=None,
            checksum_search="the ModelScope repository funasr's 'paraformer-zh' alias resolves to (funasr "
            "1.4.16 download/name_maps_from_hub.py, default hub 'ms') publishes no checksum or size: "
            "unpinned (trust on first use). The Hugging Face repo funasr/paraformer-zh "
            "is a different model (its configuration.json names the plain "
            "speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch; model.pt '881 MB'), not "
            "the one funasr's default hub gives seed-tts-eval, so it is not used here.",
            notes=notes,
        )
        for part, filename, role, notes in (
            ("model", "model.pt", "network weights", "torch state dict, read with weights_only=True."),
            ("config", "config.yaml", "network and front-end configuration", "YAML, not a checkpoint."),
            ("tokens", "tokens.json", "the 8404-symbol character list", "JSON token list."),
            ("cmvn", "am.mvn", "feature mean / variance (Kaldi nnet text)", "text, not a checkpoint."),
        )
    ),
    *(
        WeightsEntry(
            name=f"faster-whisper-large-v3-{part}",
            filename=filename,
            url=_hf("Systran/faster-whisper-large-v3", filename),
            size_bytes=None,
            size_exact=False,
            licence="MIT (huggingface.co/Systran/faster-whisper-large-v3 model card; OpenAI Whisper weights)",
            metrics=(f"WER, F5-TTS EN recipe (faster-whisper large-v3, beam 5): the CTranslate2 {what}",),
            pin=None,
            checksum_search="the publisher lists no checksum or size for these files; unpinned (trust on "
            "first use: the first fetch records the SHA-256 and later loads check it).",
            notes=notes,
        )
        for part, filename, what, notes in (
            (
                "model",
                "model.bin",
                "model weights",
                "CTranslate2 model file (its own binary format, read by ctranslate2; not a pickle).",
            ),
            ("config", "config.json", "model configuration", "JSON, not a checkpoint."),
            ("tokenizer", "tokenizer.json", "tokenizer", "JSON (Hugging Face tokenizers), not a checkpoint."),
            ("vocabulary", "vocabulary.json", "vocabulary", "JSON, not a checkpoint."),
            (
                "preprocessor",
                "preprocessor_config.json",
                "feature extractor settings",
                "JSON, not a checkpoint.",
            ),
        )
    ),
    WeightsEntry(
        name="audiobox-aesthetics",
        filename="checkpoint.pt",
        url="https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt",
        size_bytes=None,
        size_exact=False,
        licence="CC-BY-4.0 (facebookresearch/audiobox-aesthetics, 'Attribution 4.0 International')",
        metrics=("Audiobox Aesthetics CE / CU / PC / PQ (SongGeneration, HunyuanVideo-Foley evaluations)",),
        pin=None,
        checksum_search="the URL is the audiobox-aesthetics package's own download fallback (utils.DEFAULT_S3_URL, "
        "package 0.0.4); no publisher checksum or size was found, so the entry is unpinned (trust on first use).",
        state_dict_key="state_dict",
        notes="the file also holds 'model_cfg' and 'target_transform' (plain values) next to 'state_dict'; "
        "agomni.metrics.speech.aesthetics reads all three.",
    ),
    WeightsEntry(
        name="wavlm-large-s3prl",
        filename="wavlm_large.pt",
        url=_hf("s3prl/converted_ckpts", "wavlm_large.pt"),
        size_bytes=1_260_000_000,
        size_exact=False,
        licence="MIT (microsoft/unilm root LICENSE, referenced by wavlm/README.md)",
        metrics=("SIM-o backbone: WavLM-Large upstream of the UniSpeech ECAPA-TDNN (seed-tts-eval, F5-TTS)",),
        pin=Pin(
            "sha256",
            "6fb4b3c3e6aa567f0a997b30855859cb81528ee8078802af439f7b2da0bf100f",
            "Hugging Face LFS object id, huggingface.co/s3prl/converted_ckpts/blob/main/wavlm_large.pt",
        ),
        checksum_search="HF LFS SHA-256; size '1.26 GB' (rounded).",
        state_dict_key="model",
        notes="loaded by s3prl's hub ('wavlm_large') when the reference scripts build the ECAPA_TDNN_SMALL head; "
        "the finetuned SV checkpoint below then overwrites its weights. agomni's wavlm-ecapa backend reads "
        "the WavLM weights from that checkpoint and does not need this file.",
    ),
    WeightsEntry(
        name="wavlm-large-ecapa-sv",
        filename="wavlm_large_finetune.pth",
        url=None,
        size_bytes=1_300_000_000,
        size_exact=False,
        licence="CC-BY-SA-3.0 (microsoft/UniSpeech LICENSE, vendored in seed-tts-eval)",
        metrics=("SIM-o (seed-tts-eval, F5-TTS): WavLM-Large + ECAPA-TDNN speaker verification",),
        pin=None,
        checksum_search="the publisher (microsoft/UniSpeech downstreams/speaker_verification README) links a "
        "Google Drive file with no checksum. Two third-party HF mirrors show LFS SHA-256 "
        "51f07e3b94d9e0262a6a675ef5a087be3dd09e8c62e9d886827f44f82fe7f94b; a mirror is not the "
        "publisher, so the entry stays unpinned (trust on first use). Size '1.3 GB' (rounded).",
        state_dict_key="model",
        notes="'model' holds the whole network: WavLM-Large under 'feature_extract.model.', then "
        "'feature_weight' and the ECAPA-TDNN head (agomni.metrics.speech.wavlm_ecapa).",
        manual="download from https://drive.google.com/file/d/1-aE1NfzpRCLxA4GUxX9ITI3F9LlbtEGP/view "
        "(linked by microsoft/UniSpeech and seed-tts-eval), then `agomni weights import "
        "wavlm-large-ecapa-sv PATH`",
    ),
    WeightsEntry(
        name="ecapa-voxceleb-embedding",
        filename="embedding_model.ckpt",
        url=_hf(_ECAPA_SB, "embedding_model.ckpt"),
        size_bytes=83_300_000,
        size_exact=False,
        licence=_ECAPA_SB_LICENCE,
        metrics=("speaker similarity with speechbrain ECAPA-TDNN (VoxCeleb)",),
        pin=Pin(
            "sha256",
            "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2",
            "Hugging Face LFS object id, huggingface.co/speechbrain/spkrec-ecapa-voxceleb embedding_model.ckpt",
        ),
        checksum_search="HF LFS SHA-256; size '83.3 MB' (rounded).",
    ),
    WeightsEntry(
        name="ecapa-voxceleb-mean-var-norm",
        filename="mean_var_norm_emb.ckpt",
        url=_hf(_ECAPA_SB, "mean_var_norm_emb.ckpt"),
        size_bytes=1_920,
        size_exact=False,
        licence=_ECAPA_SB_LICENCE,
        metrics=("speaker similarity with speechbrain ECAPA-TDNN (embedding normalisation statistics)",),
        pin=Pin(
            "sha256",
            "0eb77a0b3a9cd2f7380b5c22562e2d46122122b69b964f081fc3e70f3d8c4321",
            "Hugging Face LFS object id, huggingface.co/speechbrain/spkrec-ecapa-voxceleb mean_var_norm_emb.ckpt",
        ),
        checksum_search="HF LFS SHA-256; size '1.92 kB' (rounded).",
    ),
    WeightsEntry(
        name="ecapa-voxceleb-hyperparams",
        filename="hyperparams.yaml",
        url=_hf(_ECAPA_SB, "hyperparams.yaml"),
        size_bytes=1_920,
        size_exact=False,
        licence=_ECAPA_SB_LICENCE,
        metrics=("speaker similarity with speechbrain ECAPA-TDNN (model definition)",),
        pin=None,
        checksum_search="a small git (not LFS) file: HF shows only its git blob id, no SHA-256, and the "
        "file has been edited on main; unpinned (trust on first use).",
        notes="YAML, not a checkpoint.",
    ),
    WeightsEntry(
        name="syncnet-v2",
        filename="syncnet_v2.model",
        url="https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
        size_bytes=None,
        size_exact=False,
        licence="MIT (joonson/syncnet_python LICENSE.md; no separate weights licence published)",
        metrics=("LSE-C, LSE-D (syncnet_python, Wav2Lip evaluation)",),
        pin=None,
        checksum_search="joonson/syncnet_python download_model.sh gives the URL only (over http; the same "
        "host serves sfd_face.pth over https there); no checksum or size published. Unpinned.",
    ),
    WeightsEntry(
        name="s3fd-face",
        filename="sfd_face.pth",
        url="https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
        size_bytes=None,
        size_exact=False,
        licence="MIT (joonson/syncnet_python LICENSE.md; no separate weights licence published)",
        metrics=("LSE-C, LSE-D face tracking (S3FD detector in syncnet_python)",),
        pin=None,
        checksum_search="joonson/syncnet_python download_model.sh gives the URL only; no checksum or size "
        "published. Unpinned.",
    ),
    WeightsEntry(
        name="synchformer-24-01-04T16-39-21",
        filename="synchformer_state_dict.pth",
        url="https://github.com/hkchengrex/MMAudio/releases/download/v0.1/synchformer_state_dict.pth",
        size_bytes=907_000_000,
        size_exact=False,
        licence="MIT (Synchformer by V. Iashin, LICENSE vendored in MMAudio mmaudio/ext/synchformer/)",
        metrics=("DeSync (av-benchmark, MMAudio)",),
        pin=Pin(
            "md5",
            "5b2f5594b0730f70e41e549b7c94390c",
            "hkchengrex/MMAudio mmaudio/utils/download_utils.py (md5 list of the release files)",
        ),
        checksum_search="MMAudio publishes md5 only; SHA-256 recorded on first use. Size '907M' from the "
        "MMAudio README (rounded).",
    ),
    WeightsEntry(
        name="imagebind-huge",
        filename="imagebind_huge.pth",
        url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
        size_bytes=4_800_000_000,
        size_exact=False,
        licence="CC-BY-NC-SA-4.0 (facebookresearch/ImageBind; non-commercial)",
        metrics=("IB-score (av-benchmark, MMAudio)",),
        pin=None,
        checksum_search="facebookresearch/ImageBind loads the URL without a checksum; no published hash "
        "found. Unpinned. Size '4.8 GB' from an HF re-upload (rounded).",
    ),
    *(
        WeightsEntry(
            name=f"agomni-{size}",
            filename=f"agomni-{size}.safetensors",
            url=None,
            size_bytes=None,
            size_exact=False,
            licence="Apache-2.0 (agomni)",
            metrics=(f"reference model, size {size} (`agomni generate`, `agomni profile`)",),
            pin=None,
            checksum_search="no published file yet; the SHA-256 is recorded when a trained checkpoint is "
            "imported.",
            manual=_AGOMNI_MANUAL.replace("NAME", f"agomni-{size}"),
        )
        for size in ("tiny", "S", "M", "L")
    ),
    *(
        WeightsEntry(
            name=f"agomni-{part}-{rate}{tiny}",
            filename=f"agomni-{part}-{rate}{tiny}.safetensors",
            url=None,
            size_bytes=None,
            size_exact=False,
            licence="Apache-2.0 (agomni)",
            metrics=(
                f"reference model codec: {part} at {rate} (agomni.model.codec{', tiny test size' if tiny else ''})",
            ),
            pin=None,
            checksum_search="no published file yet; the SHA-256 is recorded when a trained checkpoint is "
            "imported.",
            manual=_AGOMNI_MANUAL.replace("NAME", f"agomni-{part}-{rate}{tiny}"),
        )
        for rate in ("16k", "44k")
        for part in ("vae", "vocoder")
        for tiny in ("", "-tiny")
    ),
    WeightsEntry(
        name="dfn5b-clip-vit-h-14-384",
        filename="open_clip_pytorch_model.bin",
        url=_hf("apple/DFN5B-CLIP-ViT-H-14-378", "open_clip_pytorch_model.bin"),
        size_bytes=3_950_000_000,
        size_exact=False,
        licence="apple-sample-code-license (HF model card tag of apple/DFN5B-CLIP-ViT-H-14-378; read its "
        "LICENSE file: Apple model licences restrict use, e.g. to research)",
        metrics=(
            "reference model CLIP video features (MMAudio: open_clip 'hf-hub:apple/DFN5B-CLIP-ViT-H-14-384', "
            "agomni.model.encoders.clip_video)",
        ),
        pin=Pin(
            "sha256",
            "c07a17b547d461c60a3cce5062b26bf8545b13de602c4c59d8490361eb716033",
            "Hugging Face LFS object id, huggingface.co/apple/DFN5B-CLIP-ViT-H-14-378/blob/"
            "f17177bb05c69c6336d0adbfc97e06d69f876904/open_clip_pytorch_model.bin",
        ),
        checksum_search="HF LFS SHA-256; size '3.95 GB' from the HF page (rounded; a third-party download "
        "list gives 3947081637 B). The repository was renamed from apple/DFN5B-CLIP-ViT-H-14-384 (the name "
        "MMAudio uses) to apple/DFN5B-CLIP-ViT-H-14-378; HF redirects the old name.",
        notes="full open_clip model (image and text towers); the video encoder uses the 'visual.' keys.",
    ),
    WeightsEntry(
        name="flan-t5-large",
        filename="model.safetensors",
        url=_hf("google/flan-t5-large", "model.safetensors"),
        size_bytes=3_130_000_000,
        size_exact=False,
        licence="Apache-2.0 (huggingface.co/google/flan-t5-large model card)",
        metrics=("reference model text features (AudioGen-Omni: Flan-T5; agomni.model.encoders.flan_t5)",),
        pin=None,
        checksum_search="the publisher's LFS SHA-256 of google/flan-t5-large "
        "model.safetensors is not recorded here; only fine-tuned copies' hashes are known, which are "
        "not this file. Unpinned (trust on first use). Size '3.13 GB' (rounded).",
        notes="full encoder-decoder checkpoint; the text encoder uses 'shared.weight' and 'encoder.*'.",
    ),
    WeightsEntry(
        name="flan-t5-large-spiece",
        filename="spiece.model",
        url=_hf("google/flan-t5-large", "spiece.model"),
        size_bytes=792_000,
        size_exact=False,
        licence="Apache-2.0 (huggingface.co/google/flan-t5-large model card)",
        metrics=("reference model text tokenizer (SentencePiece model of Flan-T5)",),
        pin=None,
        checksum_search="an LFS file whose publisher's SHA-256 is not recorded here. "
        "Unpinned (trust on first use). Size '792 kB' (rounded).",
        notes="SentencePiece model, not a checkpoint.",
    ),
    WeightsEntry(
        name="nisqa-v2",
        filename="nisqa.tar",
        url="https://github.com/gabrielmittag/NISQA/raw/master/weights/nisqa.tar",
        size_bytes=1_051_663,
        size_exact=True,
        licence="CC-BY-NC-SA-4.0 (gabrielmittag/NISQA weights/LICENSE_model_weights; the code is MIT): "
        "non-commercial use only",
        metrics=(
            "NISQA v2.0 MOS / noisiness / discontinuity / coloration / loudness (agomni.metrics.speech.nisqa)",
        ),
        pin=None,
        checksum_search="the NISQA repository publishes no checksum for weights/nisqa.tar (the nisqa package on "
        "PyPI, 2.0.post2, ships code only). Unpinned (trust on first use); the file at commit fe84f0f2 of "
        "that repository is 1,051,663 bytes.",
        state_dict_key="model_state_dict",
        notes="a torch.save zip file despite its name; 'args' (plain values: the mel and "
        "network settings, checked on load) sits next to 'model_state_dict'.",
    ),
    WeightsEntry(
        name="muq-large-msd-iter-config",
        filename="config.json",
        url=_hf("OpenMuQ/MuQ-large-msd-iter", "config.json"),
        size_bytes=None,
        size_exact=False,
        licence=_MUQ_LICENCE,
        metrics=("SongEval backbone configuration: MuQ sizes, conformer settings, mel statistics",),
        pin=None,
        checksum_search="a small git file on the Hugging Face repository (no LFS hash). Unpinned (trust "
        "on first use).",
        notes="JSON, not a checkpoint; defines the network, so --random-weights needs it too.",
    ),
    WeightsEntry(
        name="muq-large-msd-iter",
        filename="model.safetensors",
        url=_hf("OpenMuQ/MuQ-large-msd-iter", "model.safetensors"),
        size_bytes=None,
        size_exact=False,
        licence=_MUQ_LICENCE,
        metrics=("SongEval backbone: MuQ-large-msd-iter hidden_states[6] (agomni.metrics.speech.songeval)",),
        pin=None,
        checksum_search="the publisher's LFS SHA-256 and size of model.safetensors are not recorded "
        "here; unpinned (trust on first use).",
        notes="keys under 'model.'; SongEval uses the subsampling convolutions and the first 6 conformer layers.",
    ),
    WeightsEntry(
        name="songeval-head",
        filename="model.safetensors",
        url="https://github.com/ASLP-lab/SongEval/raw/main/ckpt/model.safetensors",
        size_bytes=None,
        size_exact=False,
        licence="CC-BY-NC-SA-4.0 (ASLP-lab/SongEval README 'License' section; the repository's LICENSE file "
        "holds Apache-2.0 text, the README's licence is the stricter one): non-commercial use only",
        metrics=(
            "SongEval coherence / musicality / memorability / clarity / naturalness (5 song-aesthetics scores)",
        ),
        pin=None,
        checksum_search="no checksum or size published in the SongEval repository or README; unpinned "
        "(trust on first use).",
        notes="safetensors of SongEval's head (ffd, four attention layers, fc); loaded strictly.",
    ),
    *(
        WeightsEntry(
            name=f"openl3-mel256-{content}-512",
            filename=f"torchopenl3_mel256_{content}_512.pth.tar",
            url=f"https://github.com/torchopenl3/torchopenl3-models/raw/master/torchopenl3_mel256_{content}_512.pth.tar",
            size_bytes=None,
            size_exact=False,
            licence="CC-BY-4.0 (openl3 README, 'Model Weights License'; torchopenl3's conversion, code MIT)",
            metrics=(
                f"FD_openl3 / KAD on OpenL3 ({content}), stable-audio-metrics src/openl3_fd.py "
                f"(openl3 mel256 content_type={content!r} embedding_size=512)",
            ),
            pin=None,
            checksum_search="neither torchopenl3 nor openl3 publishes a checksum or size for these files; "
            "unpinned (trust on first use).",
            notes="torchopenl3 1.0.1 load_audio_embedding_model's file: a plain state dict of openl3's "
            "Keras weights; its speclayer.* buffers (kapre 0.1.4 frontend) are not used by agomni, which "
            "computes openl3 0.4.2's frontend.",
        )
        for content in ("env", "music")
    ),
    WeightsEntry(
        name="ms-clap-2023",
        filename="CLAP_weights_2023.pth",
        url=_hf("microsoft/msclap", "CLAP_weights_2023.pth"),
        size_bytes=None,
        size_exact=False,
        licence="MIT (microsoft/CLAP repository LICENSE, the msclap package's source)",
        metrics=("MS-CLAP score (av-benchmark MS-CLAP-Score; msclap 1.3.4 CLAP(version='2023'))",),
        pin=None,
        checksum_search="msclap downloads this file with hf_hub_download('microsoft/msclap', "
        "'CLAP_weights_2023.pth'); its blob page (LFS SHA-256 and size) was not among the searchable pages, "
        "and no other source gives a hash or size. Unpinned (trust on first use); size unknown.",
        state_dict_key="model",
        notes="HTSAT-tiny audio encoder + GPT-2 text encoder with 1024-d projections (msclap's "
        "audio_encoder.* / caption_encoder.* names), read with weights_only=True; "
        "agomni.metrics.text_audio.ms_clap_net loads each tower strictly.",
    ),
    *(
        WeightsEntry(
            name=f"gpt2-{part}",
            filename=filename,
            url=_hf("openai-community/gpt2", filename),
            size_bytes=size,
            size_exact=False,
            licence="MIT (huggingface.co/openai-community/gpt2 model card)",
            metrics=(f"MS-CLAP score: the {part} file of the GPT-2 tokenizer msclap loads ('gpt2')",),
            pin=None,
            checksum_search="a plain git file (not LFS) on the hub, so the publisher shows no SHA-256; "
            f"unpinned (trust on first use). Size '{size // 1000} kB' (rounded).",
            notes="tokenizer file, not a checkpoint (agomni.metrics.embedders.gpt2_bpe reads it).",
        )
        for part, filename, size in (("vocab", "vocab.json", 1_042_000), ("merges", "merges.txt", 456_000))
    ),
)

REGISTRY: dict[str, WeightsEntry] = {entry.name: entry for entry in _ENTRIES}
_extra: dict[str, WeightsEntry] = {}


def entries() -> list[WeightsEntry]:
    """Every known entry (the registry plus any added with `registered`), in registry order."""
    return [*REGISTRY.values(), *(e for name, e in _extra.items() if name not in REGISTRY)]


def get_entry(name: str) -> WeightsEntry:
    """The entry called `name`; UnknownWeightsError listing the known names otherwise."""
    if name in _extra:
        return _extra[name]
    if name in REGISTRY:
        return REGISTRY[name]
    known = ", ".join(e.name for e in entries())
    raise UnknownWeightsError(f"unknown weights {name!r}; known: {known} (see `agomni weights list`)")


@contextmanager
def registered(*extra: WeightsEntry) -> Iterator[None]:
    """Temporarily add (or override) entries, e.g. ones pointing at a local test server or a mirror."""
    saved = dict(_extra)
    _extra.update({entry.name: entry for entry in extra})
    try:
        yield
    finally:
        _extra.clear()
        _extra.update(saved)

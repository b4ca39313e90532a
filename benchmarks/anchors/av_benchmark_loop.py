"""av-benchmark's own evaluation (its ``evaluate.py`` entry: ``extract`` for each folder, then
``av_bench.evaluate.evaluate``) on CPU, with weights from files instead of downloads.

The fetched av-benchmark source stays unmodified; this driver only replaces, at run time, what would reach
the network or a GPU:

- ``device`` of ``evaluate.py`` and ``av_bench.evaluate`` -> ``"cpu"``;
- ``torchaudio.load`` -> the same read through soundfile (float32 [channels, samples], rate): the
  installed torchaudio reads files only through torchcodec, which is not installed, and av-benchmark's
  dataset retries the next file forever when a read fails;
- CNN14 16 kHz: ``$HOME/.cache/audioldm_eval/ckpt/Cnn14_16k_mAP=0.438.pth`` is read from ``--weights``
  (``HOME`` points there; the 32 kHz file it checks for is an empty placeholder, never read);
- VGGish: ``torch.hub.load('harritaylor/torchvggish', 'vggish')`` -> a module holding ``vggish.pth``;
- PaSST: ``hear21passt.base.get_model_passt`` -> the same architecture built with ``pretrained=False``
  and ``passt.pth`` loaded strictly;
- Synchformer (DeSync; not scored without video features, but av-benchmark builds and loads it in both
  stages): its module cannot be imported here (its AST code imports
  ``transformers.pytorch_utils.find_pruneable_heads_and_indices``, which the installed transformers no
  longer has), so it is an empty module too, loading an empty ``synchformer.pth``;
- ImageBind, LAION-CLAP and MS-CLAP (not used by the audio-only metric set; ImageBind and pytorchvideo
  are not installed, importing laion_clap fetches the BART tokenizer from the Hugging Face hub, the CLAP
  checkpoints would be downloaded) -> empty modules, so their import and construction time is left out
  of the av-benchmark timing; ``colorlog`` (not installed) -> plain ``logging``.

Prints one JSON line with av-benchmark's metric values under agomni's metric names.

    python benchmarks/anchors/av_benchmark_loop.py --src /work/ext/av-benchmark --pred P --ref R \
        --weights W --work DIR --seconds 8 [--num-workers 2]
    python benchmarks/anchors/av_benchmark_loop.py --src /work/ext/av-benchmark --weights W --prepare
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from anchor_stats import emit

# av-benchmark output key -> agomni metric name
NAMES = {
    "FD-VGG": "fd_vggish",
    "FD-PANN": "fd_panns",
    "FD-PASST": "fd_passt",
    "KL-PANNS-softmax": "kl_panns",
    "KL-PASST-softmax": "kl_passt",
    "ISC-PANNS-mean": "is_panns",
}


class Unused(torch.nn.Module):
    """Stands in for a network the audio-only metric set never calls."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

    def load_ckpt(self, *args: object, **kwargs: object) -> None:
        return None


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__path__ = []
    sys.modules[name] = module
    return module


def _plain(fmt: str) -> str:
    return fmt.replace("%(log_color)s", "").replace("%(reset)s", "")


def install_missing_modules() -> None:
    """Modules av-benchmark imports at the top that are not installed here and not used by this run."""
    if importlib.util.find_spec("colorlog") is None:
        _module("colorlog", ColoredFormatter=lambda fmt, *a, **k: logging.Formatter(_plain(fmt)))
    if importlib.util.find_spec("pytorchvideo") is None:
        _module("pytorchvideo")
        _module("pytorchvideo.data")
        _module("pytorchvideo.data.clip_sampling", ConstantClipsPerVideoSampler=Unused)
    if importlib.util.find_spec("imagebind") is None:
        modality = types.SimpleNamespace(AUDIO="audio", VISION="vision", TEXT="text")
        _module("imagebind")
        models = _module("imagebind.models")
        models.imagebind_model = _module(
            "imagebind.models.imagebind_model", ModalityType=modality, imagebind_huge=lambda **k: Unused()
        )
    _module("laion_clap", CLAP_Module=Unused)
    import transformers.pytorch_utils

    if not hasattr(transformers.pytorch_utils, "find_pruneable_heads_and_indices"):
        _module("av_bench.synchformer")
        _module("av_bench.synchformer.synchformer", Synchformer=Unused, make_class_grid=None)


def soundfile_load(path: object, *args: object, **kwargs: object) -> tuple[torch.Tensor, int]:
    """``torchaudio.load`` of a WAV/FLAC file as its soundfile backend returned it."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(data.T)), rate


def patch_weights(weights: Path) -> None:
    """Point every checkpoint av-benchmark loads for the audio metrics at the files in ``weights``."""
    import hear21passt.base
    from hear21passt.models.passt import get_model

    def vggish_hub(repo: str, model: str, **kwargs: object) -> torch.nn.Module:
        holder = torch.nn.Module()
        holder.state_dict = lambda: torch.load(weights / "vggish.pth", weights_only=True)  # type: ignore[method-assign]
        return holder

    def passt_net(arch: str, **kwargs: object) -> torch.nn.Module:
        net = get_model(arch=arch, pretrained=False, **kwargs)
        net.load_state_dict(torch.load(weights / "passt.pth", weights_only=True))
        return net

    torch.hub.load = vggish_hub
    torchaudio.load = soundfile_load
    hear21passt.base.get_model_passt = passt_net
    os.environ["HOME"] = str(weights / "home")

    import av_bench.evaluate
    import av_bench.extraction_models as extraction_models

    extraction_models._syncformer_ckpt_path = weights / "synchformer.pth"
    av_bench.evaluate._syncformer_ckpt_path = weights / "synchformer.pth"
    av_bench.evaluate.device = "cpu"
    extraction_models.CLAP = Unused


def prepare(weights: Path, seed: int) -> None:
    """Synchformer weights (seeded random, or empty for the empty stand-in) and the CNN14 files under
    ``weights/home`` (copies of ``panns.pth``)."""
    from av_bench.synchformer.synchformer import Synchformer

    torch.manual_seed(seed)
    torch.save(Synchformer().state_dict(), weights / "synchformer.pth")
    ckpt = weights / "home" / ".cache" / "audioldm_eval" / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights / "panns.pth", ckpt / "Cnn14_16k_mAP=0.438.pth")
    (ckpt / "Cnn14_mAP=0.431.pth").touch()


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="av-benchmark source tree")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--pred", type=Path)
    parser.add_argument("--ref", type=Path)
    parser.add_argument("--work", type=Path, help="folder for av-benchmark's feature caches (emptied)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument(
        "--prepare", action="store_true", help="write the Synchformer and CNN14 files, then stop"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(args.src))
    install_missing_modules()
    if args.prepare:
        prepare(args.weights, args.seed)
        return
    patch_weights(args.weights)
    shutil.rmtree(args.work, ignore_errors=True)
    spec = importlib.util.spec_from_file_location("av_benchmark_evaluate", args.src / "evaluate.py")
    assert spec is not None and spec.loader is not None
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    entry.device = "cpu"
    cli = [
        "--gt_audio", str(args.ref), "--pred_audio", str(args.pred),
        "--gt_cache", str(args.work / "gt_cache"), "--pred_cache", str(args.work / "pred_cache"),
        "--audio_length", str(args.seconds), "--num_workers", str(args.num_workers),
        "--skip_video_related", "--skip_clap",
    ]  # fmt: skip
    entry.main(entry.get_eval_parser().parse_args(cli))
    values = json.loads((args.work / "pred_cache" / "output_metrics.json").read_text())
    emit("av-benchmark", {ours: float(values[theirs]) for theirs, ours in NAMES.items()}, started)


if __name__ == "__main__":
    main()

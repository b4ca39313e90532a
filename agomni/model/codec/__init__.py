"""Audio codec of the reference model: log-mel front end, mel VAE and vocoder behind one `AudioCodec`.

Use ``AudioCodec.load(codec_config("16k"), vae=..., vocoder=...)``; see ``audio_codec.py`` for
shapes and the latent grid, ``mel.py`` for the per-rate settings (MMAudio's numbers, cited there).
"""

from .audio_codec import CODEC_16K, CODEC_44K, AudioCodec, CodecConfig, LatentPosterior, codec_config
from .mel import MEL_16K, MEL_44K, MelSettings, mel_settings

__all__ = [
    "CODEC_16K",
    "CODEC_44K",
    "MEL_16K",
    "MEL_44K",
    "AudioCodec",
    "CodecConfig",
    "LatentPosterior",
    "MelSettings",
    "codec_config",
    "mel_settings",
]

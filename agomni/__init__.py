"""agomni: evaluation suite and reference model for video-synchronized audio, speech and song generation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agomni")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

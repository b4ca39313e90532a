"""Audio-visual metrics: LSE-C / LSE-D (SyncNet lip sync), DeSync (Synchformer), IB-score (ImageBind).

The lip-sync metric needs OpenCV (``pip install 'agomni[av]'``).
"""

from agomni.errors import UsageError

try:
    import cv2  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise UsageError(
        "the audio-visual metrics need OpenCV; install it with: pip install 'agomni[av]'"
    ) from err

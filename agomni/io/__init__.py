"""Audio and video input: decoding with PyAV/soundfile, named downmix/resample/fps/resize policies, records.

Public API: `load_audio`, `load_video`, `resample`, `downmix`, `AudioRecord`, `VideoRecord`,
`AUDIO_EXTENSIONS`, `VIDEO_EXTENSIONS` and the policy name tuples.
"""

from agomni.io.audio import load_audio
from agomni.io.downmix import DOWNMIX_POLICIES, downmix
from agomni.io.records import AudioRecord, VideoRecord
from agomni.io.resample import RESAMPLE_POLICIES, resample, resample_parameters
from agomni.io.video import FPS_POLICIES, RESIZE_POLICIES, load_video

#: File extensions (lower case, with the dot) of audio files `load_audio` is tested on.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a")
#: File extensions of video containers `load_video` (and `load_audio`, for their audio track) is tested on.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm")

__all__ = [
    "AUDIO_EXTENSIONS",
    "DOWNMIX_POLICIES",
    "FPS_POLICIES",
    "RESAMPLE_POLICIES",
    "RESIZE_POLICIES",
    "VIDEO_EXTENSIONS",
    "AudioRecord",
    "VideoRecord",
    "downmix",
    "load_audio",
    "load_video",
    "resample",
    "resample_parameters",
]

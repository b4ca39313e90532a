"""Byte-level truncation checks for containers whose decoders return cut files without complaint.

Each check reads only headers, raises `UnreadableMediaError` when the file holds fewer bytes than it
declares, and otherwise returns the sentence recorded as ``integrity_check``.

* WAV: the ``data`` chunk's declared size must be present (libsndfile and FFmpeg both return the
  shorter audio of a cut wav without an error).
* Ogg (vorbis, opus): every page must be complete and every logical stream must end with an
  end-of-stream page (FFmpeg drops a cut last page and derives the duration from the last whole one).
* MP3: the byte count a Xing/Info (LAME) header declares must be present, and the last MPEG frame
  whose header is found must be whole.
* MP4/M4A/MOV (ISO BMFF): every top-level box must fit in the file (a cut file may still open when
  its index comes first, or open with its streams garbled when the cut lands inside the index).
* Matroska/WebM: the Segment element's declared size must fit in the file (unknown-size segments,
  written by live muxers, cannot be checked).

`BYTE_CHECKS` maps FFmpeg's container format name to its check.
"""

from __future__ import annotations

import struct
from pathlib import Path

from agomni.errors import UnreadableMediaError


def wav_data_chunk(path: Path) -> tuple[int, int, int] | None:
    """``(data_offset, declared_data_bytes, block_align)`` of a RIFF/WAVE file, None if not found."""
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt = handle.read(chunk_size + (chunk_size & 1))
                if len(fmt) >= 14:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                continue
            if chunk_id == b"data":
                return handle.tell(), chunk_size, block_align
            handle.seek(chunk_size + (chunk_size & 1), 1)


def check_wav(path: Path) -> tuple[str, int | None]:
    """Check a wav's data chunk; return (sentence, declared data bytes or None)."""
    chunk = wav_data_chunk(path)
    if chunk is None:
        return "not checked: no RIFF/WAVE data chunk header found (RF64 or unusual layout)", None
    offset, declared_bytes, block_align = chunk
    if declared_bytes in (0, 0xFFFFFFFF):
        return "not checked: the wav data chunk declares no size (streamed file)", None
    available = path.stat().st_size - offset
    if declared_bytes > available:
        raise UnreadableMediaError(
            path,
            f"truncated: the wav data chunk declares {declared_bytes} bytes but only {available} are present",
        )
    frames = declared_bytes // block_align if block_align else None
    return f"wav data chunk declares {declared_bytes} bytes; all present", frames


def check_ogg(path: Path) -> str:
    """Walk the Ogg pages: each must be whole, and each logical stream must reach its end-of-stream page."""
    size = path.stat().st_size
    open_streams: set[int] = set()
    pages = 0
    with path.open("rb") as handle:
        offset = 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(27)
            if len(header) < 27 or header[:4] != b"OggS":
                raise UnreadableMediaError(path, f"truncated or corrupt: no whole Ogg page at byte {offset}")
            flags, serial, segments = header[5], struct.unpack("<I", header[14:18])[0], header[26]
            table = handle.read(segments)
            page_end = offset + 27 + segments + sum(table)
            if len(table) < segments or page_end > size:
                raise UnreadableMediaError(
                    path,
                    f"truncated: the Ogg page at byte {offset} ends at byte {page_end} "
                    f"but the file has {size}",
                )
            if flags & 0x02:
                open_streams.add(serial)
            if flags & 0x04:
                open_streams.discard(serial)
            pages += 1
            offset = page_end
    if open_streams:
        raise UnreadableMediaError(path, "truncated: the Ogg stream ends without its end-of-stream page")
    return f"ogg: {pages} whole pages, every stream ends with its end-of-stream page"


_MP3_BITRATES_KBPS = {  # (mpeg1, layer) -> table indexed by the 4-bit bitrate index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(header: int) -> int | None:
    """Byte length of the MPEG audio frame starting with 32-bit `header`, None if it is not a valid header."""
    version, layer_bits = (header >> 19) & 3, (header >> 17) & 3
    bitrate_index, rate_index, padding = (header >> 12) & 15, (header >> 10) & 3, (header >> 9) & 1
    if (
        header >> 21 != 0x7FF
        or version == 1
        or layer_bits == 0
        or bitrate_index in (0, 15)
        or rate_index == 3
    ):
        return None
    mpeg1, layer = version == 3, 4 - layer_bits
    bitrate = _MP3_BITRATES_KBPS[(mpeg1, layer)][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding


def _id3v2_end(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = data[6:10]
    return 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])


def _xing_stream_bytes(data: bytes) -> tuple[int, int] | None:
    """``(stream_start, declared_bytes)`` from the Xing/Info header of an MP3, None if it has none."""
    start = _id3v2_end(data)
    if len(data) < start + 4:
        return None
    header = struct.unpack(">I", data[start : start + 4])[0]
    if header >> 21 != 0x7FF:
        return None
    mpeg1, mono = (header >> 19) & 3 == 3, (header >> 6) & 3 == 3
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    tag = start + 4 + side_info
    if data[tag : tag + 4] not in (b"Xing", b"Info") or len(data) < tag + 16:
        return None
    flags = struct.unpack(">I", data[tag + 4 : tag + 8])[0]
    if not flags & 0x02:
        return None
    field = tag + 8 + (4 if flags & 0x01 else 0)
    return start, struct.unpack(">I", data[field : field + 4])[0]


def check_mp3(path: Path) -> str:
    """Check an MP3 for truncation in two ways.

    1. With a Xing/Info (LAME) header: the stream must hold the byte count the header declares.
    2. Always: walk the MPEG frame headers from the first frame; a frame whose header is valid but whose
       length runs past the end of the file is a cut frame. The walk stops quietly at anything that is
       not a frame header (an ID3v1/APE tag or trailing junk), so only a cut frame raises.
    """
    data = path.read_bytes()
    sentences = []
    declared = _xing_stream_bytes(data)
    if declared is None:
        sentences.append("no Xing/Info byte count")
    else:
        start, declared_bytes = declared
        if len(data) - start < declared_bytes:
            raise UnreadableMediaError(
                path,
                f"truncated: the mp3 Xing/Info header declares {declared_bytes} bytes of audio but only "
                f"{len(data) - start} are present",
            )
        sentences.append(f"Xing/Info header declares {declared_bytes} bytes; all present")
    offset, frames = _id3v2_end(data), 0
    while offset + 4 <= len(data):
        length = _mp3_frame_length(struct.unpack(">I", data[offset : offset + 4])[0])
        if length is None:
            break
        if offset + length > len(data):
            raise UnreadableMediaError(
                path,
                f"truncated: mp3 frame {frames} at byte {offset} needs {length} bytes but the file ends "
                f"after {len(data) - offset}",
            )
        offset, frames = offset + length, frames + 1
    sentences.append(f"{frames} whole frames from the start")
    return "mp3: " + "; ".join(sentences)


def check_isobmff(path: Path) -> str:
    """Walk the top-level boxes of an MP4/M4A/MOV file; each must end within the file."""
    size = path.stat().st_size
    boxes = []
    with path.open("rb") as handle:
        offset = 0
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            box_size, box_type = struct.unpack(">I", header[:4])[0], header[4:8].decode("latin-1")
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset
            if box_size < 8 or offset + box_size > size:
                raise UnreadableMediaError(
                    path,
                    f"truncated: the '{box_type}' box at byte {offset} declares {box_size} bytes but the "
                    f"file ends after {size - offset}",
                )
            boxes.append(box_type)
            offset += box_size
    if offset != size:
        raise UnreadableMediaError(path, f"truncated: {size - offset} stray bytes after the last whole box")
    return f"mp4: top-level boxes {', '.join(boxes)} all whole"


def _ebml_vint(data: bytes, offset: int, keep_marker: bool) -> tuple[int, int]:
    """EBML variable-length integer at `offset`: (value, length in bytes); value -1 for 'unknown size'."""
    first = data[offset]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or offset + length > len(data):
        raise ValueError("bad EBML integer")
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for byte in data[offset + 1 : offset + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return -1, length
    return value, length


def check_matroska(path: Path) -> str:
    """The Matroska/WebM Segment's declared size must fit in the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    try:
        offset = 0
        while offset < len(head):
            element, id_length = _ebml_vint(head, offset, keep_marker=True)
            body, size_length = _ebml_vint(head, offset + id_length, keep_marker=False)
            start = offset + id_length + size_length
            if element == 0x18538067:  # Segment
                if body < 0:
                    return "matroska: segment of unknown size (live-written), not checked"
                if start + body > size:
                    raise UnreadableMediaError(
                        path,
                        f"truncated: the Matroska segment declares {body} bytes but the file holds "
                        f"{size - start}",
                    )
                return f"matroska: segment declares {body} bytes; all present"
            if body < 0:
                break
            offset = start + body
    except (ValueError, IndexError):
        pass
    return "matroska: no segment header found in the first 64 KiB, not checked"


BYTE_CHECKS = {
    "ogg": check_ogg,
    "mp3": check_mp3,
    "mov,mp4,m4a,3gp,3g2,mj2": check_isobmff,
    "matroska,webm": check_matroska,
}

"""Keep freed memory inside the process (glibc Linux), so that the networks' large buffers are reused.

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB unless set) with fresh
pages from ``mmap`` and gives them back on ``free``. A CPU convolution's unfolded input is far above
that (CNN14's second 3 x 3 convolution on 8 s at 16 kHz: 64 x 9 rows of 801 x 64 floats, 118 MB per
clip), so every forward pass page-faults its buffers in again, and the kernel zeroes each 4 KiB page:
about a third of a CNN14 pass was system time on a 2-core machine. Raising the mmap threshold to
1 GiB and the trim threshold to 2 GiB keeps those buffers in the heap for the next pass. Numbers do
not change (the same kernels run on the same values); what changes is that memory released by one
network stays with the process and is reused by the next instead of going back to the system.

`agomni` (the console command and ``python -m agomni.cli``) calls `keep_freed_memory` before a command
runs; importing agomni as a library changes nothing. ``AGOMNI_MALLOC=default`` keeps glibc's defaults.

Memory kept this way would grow with the number of clips: the freed blocks between long-lived small
allocations are not always reused, and the heap grows past them. `release_freed_memory` (glibc's
``malloc_trim``) hands the pages of every free block back to the system; `agomni eval` calls it every
`agomni.evaluate.pipeline.RELEASE_EVERY` chunks and after its embedders are released, so its peak memory
stays flat in the number of clips while the buffers of the next passes are still reused.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
ENV = "AGOMNI_MALLOC"


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (see the module text); True if both were set.

    Does nothing (False) off Linux, without glibc's ``mallopt``, or with ``AGOMNI_MALLOC=default``."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if os.environ.get(ENV, "").strip().lower() == "default" or mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


def release_freed_memory() -> bool:
    """Give the pages of every free heap block back to the system (glibc ``malloc_trim(0)``); True if
    glibc released any. Values are unchanged; the next allocations of that size page-fault again. Does
    nothing (False) off Linux or without glibc's ``malloc_trim``."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return trim(0) == 1

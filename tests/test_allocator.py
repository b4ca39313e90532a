"""agomni.allocator: glibc keeps a freed 200 MB block in the heap after `keep_freed_memory`, and gives it
back to the system without it; read through glibc's own ``mallinfo2`` in a fresh process each time, so
the test process's allocator is never changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import agomni.cli
from agomni import allocator

PROBE = r"""
import ctypes, json, sys
from agomni.allocator import keep_freed_memory

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
tuned = keep_freed_memory()
block = libc.malloc(200 << 20)
ctypes.memset(block, 1, 200 << 20)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(json.dumps({"tuned": tuned, "mmapped_during": during.hblkhd, "heap_free_after": after.fordblks,
                  "heap_after": after.arena}))
"""


def _probe(env_value: str | None) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k != allocator.ENV}
    if env_value is not None:
        env[allocator.ENV] = env_value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt/mallinfo2 are Linux-only")
def test_a_freed_large_block_stays_in_the_heap_only_when_tuned():
    tuned = _probe(None)
    assert tuned["tuned"] is True
    assert tuned["mmapped_during"] < 200 << 20  # served from the heap, not by mmap
    assert tuned["heap_free_after"] >= 200 << 20  # kept for the next allocation
    assert tuned["heap_after"] >= 200 << 20

    default = _probe("default")
    assert default["tuned"] is False
    assert default["mmapped_during"] >= 200 << 20  # glibc's default: a block this large is mmap'd ...
    assert default["heap_free_after"] < 200 << 20  # ... and given back on free


def test_the_console_command_tunes_the_allocator_before_the_command_runs(monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(agomni.cli, "keep_freed_memory", lambda: calls.append("allocator") or True)
    monkeypatch.setattr(agomni.cli, "main", lambda: calls.append("main") or 0)
    assert agomni.cli.console() == 0
    assert calls == ["allocator", "main"]


HOLE_PROBE = r"""
import ctypes, json
from agomni.allocator import keep_freed_memory, release_freed_memory

def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
keep_freed_memory()
big = libc.malloc(200 << 20)
ctypes.memset(big, 1, 200 << 20)
small = libc.malloc(64)  # after the big block: freeing it leaves a hole, not the heap's top
libc.free(big)
kept = resident()
released = release_freed_memory()
print(json.dumps({"kept": kept, "after": resident(), "released": released}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim is Linux-only")
def test_release_gives_a_freed_hole_back_to_the_system():
    """The kernel's resident-set count (/proc/self/statm) drops by the freed block once released."""
    done = subprocess.run(
        [sys.executable, "-c", HOLE_PROBE],
        env={k: v for k, v in os.environ.items() if k != allocator.ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(done.stdout)
    assert probe["released"] is True
    assert probe["kept"] - probe["after"] >= 190 << 20

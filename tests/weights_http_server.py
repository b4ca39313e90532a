"""A local HTTP file server and fixtures for the weights tests: Range requests, 404s, cut connections.

Binds 127.0.0.1 on a free port in a background thread; records every request (path and Range
header) so tests can assert what reached it.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agomni.weights import Pin, WeightsEntry


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, str | None]] = field(default_factory=list)
    cut_after: list[int] = field(default_factory=list)  # per upcoming response: send only N body bytes
    honour_range: bool = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        range_header = self.headers.get("Range")
        path = self.path.split("?")[0]
        if_range = self.headers.get("If-Range")
        state.requests.append({"path": path, "range": range_header, "if_range": if_range})
        body = state.files.get(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and if_range is not None and if_range != etag:
            match = None  # RFC 9110 If-Range: the file changed, so send all of it
        if match and state.honour_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        cut = state.cut_after.pop(0) if state.cut_after else None
        if cut is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
            payload = payload[:cut]
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class FileServer:
    """Context manager: ``with FileServer() as srv: srv.state.files["/a.pt"] = data; srv.url("/a.pt")``."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = ServerState()
        self.state = self._server.state
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- helpers shared by the tests/test_weights_*.py files ---------------------------------------


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point AGOMNI_HOME at an empty folder, turn offline mode off, keep proxies away from 127.0.0.1."""
    home = tmp_path / "home"
    monkeypatch.setenv("AGOMNI_HOME", str(home))
    for var in ("AGOMNI_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return home


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes standing in for a checkpoint."""
    return random.Random(seed).randbytes(n)


def make_entry(name: str, url: str | None, pin: Pin | None, **overrides) -> WeightsEntry:
    """A registry entry pointing at the local test server."""
    fields = dict(
        name=name,
        filename=f"{name}.pt",
        url=url,
        size_bytes=None,
        size_exact=False,
        licence="test-only",
        metrics=("test",),
        pin=pin,
        checksum_search="generated in the test",
    )
    fields.update(overrides)
    return WeightsEntry(**fields)

"""``agomni weights list | fetch | import | verify`` through the real argument parser."""

from __future__ import annotations

import hashlib
import json

import pytest

from agomni.cli import main
from agomni.weights import REGISTRY, Pin, cached_path, read_record, registered
from agomni.weights.cli import human_size
from tests.weights_http_server import FileServer, isolated_home, make_entry, payload

DATA = payload(120_000, seed=3)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def weights_home(tmp_path, monkeypatch):
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def file_server():
    with FileServer() as server:
        yield server


def _flip_byte(path, offset: int = 777) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        value = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([value ^ 0x01]))


def test_list_prints_every_entry_with_size_checksum_licence_status(weights_home, capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for entry in REGISTRY.values():
        assert entry.name in out
    whisper = next(line for line in out.splitlines() if line.startswith("whisper-large-v3 "))
    assert "sha256 e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb" in whisper
    assert "3.09 GB (3,087,371,615 B)" in whisper and "MIT" in whisper and "missing" in whisper
    panns = next(line for line in out.splitlines() if line.startswith("panns-cnn14-16k "))
    assert "~359 MB (~358,668,570 B)" in panns and "md5 362fc5ff18f1d6ad2f6d464b45893f2c" in panns
    imagebind = next(line for line in out.splitlines() if line.startswith("imagebind-huge "))
    assert "unpinned" in imagebind and "CC-BY-NC-SA-4.0" in imagebind


def test_list_json_is_complete_and_reports_cache_status(weights_home, file_server, capsys):
    file_server.state.files["/c.pt"] = DATA
    entry = make_entry("test-cached", file_server.url("/c.pt"), Pin("sha256", SHA, "test"))
    with registered(entry):
        assert main(["weights", "fetch", "test-cached"]) == 0
        capsys.readouterr()
        assert main(["weights", "list", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert set(REGISTRY) | {"test-cached"} == set(rows)
        assert rows["test-cached"]["status"] == "cached" and rows["test-cached"]["recorded_sha256"] == SHA
        assert rows["test-cached"]["trust"] == "pinned-sha256"
        assert rows["imagebind-huge"]["pin"] is None and rows["imagebind-huge"]["status"] == "missing"
        assert rows["vggish"]["pin"] == {
            "kind": "sha256-prefix",
            "value": "10086976",
            "source": REGISTRY["vggish"].pin.source,
        }
        _flip_byte(cached_path(entry))
        with open(cached_path(entry), "ab") as f:
            f.write(b"x")
        assert main(["weights", "list", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert rows["test-cached"]["status"].startswith("corrupt?")


def test_fetch_with_mirror_url_and_verify_detects_a_flipped_byte(weights_home, file_server, capsys):
    file_server.state.files["/mirror/v.pt"] = DATA
    entry = make_entry("test-verify", "https://example.invalid/v.pt", None)
    with registered(entry):
        assert main(["weights", "fetch", "test-verify", "--url", file_server.url("/mirror/v.pt")]) == 0
        out = capsys.readouterr().out
        assert SHA in out and "tofu" in out
        assert main(["weights", "verify"]) == 0
        assert f"ok        test-verify  {cached_path(entry)}  sha256 {SHA}" in capsys.readouterr().out

        _flip_byte(cached_path(entry))
        flipped = hashlib.sha256(cached_path(entry).read_bytes()).hexdigest()
        assert main(["weights", "verify", "test-verify"]) == 1
        captured = capsys.readouterr()
        assert f"MISMATCH  test-verify  {cached_path(entry)}  expected {SHA}  got {flipped}" in captured.out
        assert "1 of 1 file(s) failed verification" in captured.err


def test_import_via_cli_match_and_mismatch(weights_home, tmp_path, capsys):
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    good.write_bytes(DATA)
    bad.write_bytes(DATA[:-1] + b"\x00")
    pinned = make_entry("test-import", None, Pin("sha256", SHA, "test"), manual="test")
    with registered(pinned):
        assert main(["weights", "import", "test-import", str(bad)]) == 1
        err = capsys.readouterr().err
        assert f"expected {SHA}" in err and hashlib.sha256(bad.read_bytes()).hexdigest() in err
        assert not cached_path(pinned).exists()
        assert main(["weights", "import", "test-import", str(good)]) == 0
        assert "pinned-sha256" in capsys.readouterr().out
        assert cached_path(pinned).read_bytes() == DATA and read_record(pinned).sha256 == SHA


def test_verify_with_nothing_cached_and_missing_named_entry(weights_home, capsys):
    assert main(["weights", "verify"]) == 0
    assert "no cached weights" in capsys.readouterr().out
    assert main(["weights", "verify", "vggish"]) == 1
    assert "MISSING   vggish" in capsys.readouterr().out


def test_offline_fetch_exits_non_zero_with_instructions(weights_home, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "syncnet-v2"]) == 1
    err = capsys.readouterr().err
    assert "agomni weights import syncnet-v2 /path/to/syncnet_v2.model" in err
    assert str(cached_path(REGISTRY["syncnet-v2"])) in err


def test_unknown_name_exits_2(weights_home, capsys):
    assert main(["weights", "fetch", "nope"]) == 2
    assert "unknown weights 'nope'" in capsys.readouterr().err


def test_human_size_shows_units_and_marks_rounded_sizes():
    def size(n, exact):
        return human_size(make_entry("s", None, None, size_bytes=n, size_exact=exact))

    assert size(1_234_567, True) == "1.23 MB (1,234,567 B)"
    assert size(512, True) == "512 B (512 B)"
    assert size(1_860_000_000, False) == "~1.86 GB (~1,860,000,000 B)"
    assert size(None, False) == "unknown"

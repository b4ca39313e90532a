"""Fetch, resume, pins, trust on first use, offline mode and import, against a local HTTP server.

Every expected checksum is computed here with hashlib from the bytes the server serves.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from agomni.errors import ChecksumMismatchError, DownloadError, OfflineError, WeightsError
from agomni.weights import (
    Pin,
    cached_path,
    fetch,
    import_file,
    provenance,
    read_record,
    resolve,
    sha256_of,
    verify,
)
from agomni.weights.store import part_path, record_path
from tests.weights_http_server import FileServer, isolated_home, make_entry, payload

DATA = payload()
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
OTHER = payload(seed=1)


@pytest.fixture
def weights_home(tmp_path, monkeypatch):
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def file_server():
    with FileServer() as server:
        yield server


def _sha_pin(value: str = SHA) -> Pin:
    return Pin("sha256", value, "computed in the test")


def _serve(server, path: str = "/ckpt.pt", data: bytes = DATA) -> str:
    server.state.files[path] = data
    return server.url(path)


def test_fetch_matching_sha256_pin(weights_home, file_server):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    path = fetch(entry, progress=False)
    assert path == cached_path(entry) and path.read_bytes() == DATA
    record = read_record(entry)
    assert record.sha256 == SHA and record.size_bytes == len(DATA) and record.trust == "pinned-sha256"
    assert record.source == entry.url
    assert json.loads(record_path(entry).read_text())["sha256"] == SHA
    assert [r["range"] for r in file_server.state.requests] == [None]
    assert not part_path(entry).exists()


def test_fetch_mismatch_leaves_nothing_and_says_expected_and_got(weights_home, file_server):
    wrong = hashlib.sha256(OTHER).hexdigest()
    entry = make_entry("w", _serve(file_server), _sha_pin(wrong))
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(entry, progress=False)
    assert f"expected {wrong}" in str(info.value) and f"got {SHA}" in str(info.value)
    assert (
        not cached_path(entry).exists() and not part_path(entry).exists() and not record_path(entry).exists()
    )


def test_interrupted_transfer_resumes_with_range(weights_home, file_server):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    file_server.state.cut_after.append(100_000)
    with pytest.raises(DownloadError, match="resumes"):
        fetch(entry, progress=False)
    assert part_path(entry).read_bytes() == DATA[:100_000]
    assert not cached_path(entry).exists()
    path = fetch(entry, progress=False)
    assert [r["range"] for r in file_server.state.requests] == [None, "bytes=100000-"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    assert not part_path(entry).exists()


def test_resume_carries_if_range_and_a_changed_file_is_fetched_whole(weights_home, file_server):
    entry = make_entry("w", _serve(file_server), None)
    file_server.state.cut_after.append(100_000)
    with pytest.raises(DownloadError):
        fetch(entry, progress=False)
    first_etag = f'"{SHA[:16]}"'
    _serve(file_server, data=OTHER)  # the publisher replaces the file between the two attempts
    path = fetch(entry, progress=False)
    assert file_server.state.requests[-1]["range"] == "bytes=100000-"
    assert file_server.state.requests[-1]["if_range"] == first_etag
    assert path.read_bytes() == OTHER  # whole new file, not old prefix + new tail
    assert read_record(entry).sha256 == hashlib.sha256(OTHER).hexdigest()


def test_complete_part_file_is_finished_after_a_416(weights_home, file_server):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    part = part_path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA)  # e.g. a crash between the last byte and the rename
    assert fetch(entry, progress=False).read_bytes() == DATA
    assert [r["range"] for r in file_server.state.requests] == [f"bytes={len(DATA)}-"]


def test_stale_part_longer_than_the_file_is_discarded(weights_home, file_server):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    part = part_path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA + b"stale tail")
    assert fetch(entry, progress=False).read_bytes() == DATA
    assert [r["range"] for r in file_server.state.requests] == [f"bytes={len(DATA) + 10}-", None]


def test_server_ignoring_range_restarts_from_zero(weights_home, file_server):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    file_server.state.cut_after.append(50_000)
    with pytest.raises(DownloadError):
        fetch(entry, progress=False)
    file_server.state.honour_range = False
    path = fetch(entry, progress=False)
    assert file_server.state.requests[-1]["range"] == "bytes=50000-"
    assert path.read_bytes() == DATA


def test_concurrent_fetches_download_once(weights_home, file_server):
    entry = make_entry("w", _serve(file_server, data=payload(3_000_000, seed=5)), None)
    with ThreadPoolExecutor(max_workers=3) as pool:
        paths = list(pool.map(lambda _: fetch(entry, progress=False), range(3)))
    assert len(set(paths)) == 1 and len(file_server.state.requests) == 1
    assert paths[0].read_bytes() == payload(3_000_000, seed=5)


def test_404_is_a_download_error_naming_the_url(weights_home, file_server):
    entry = make_entry("w", file_server.url("/absent.pt"), None)
    with pytest.raises(DownloadError, match=r"HTTP 404") as info:
        fetch(entry, progress=False)
    assert entry.url in str(info.value)
    assert not cached_path(entry).exists() and not record_path(entry).exists()
    assert _leftovers(entry) == []


def _leftovers(entry) -> list[str]:
    """Files in the entry's cache folder other than the checkpoint and its record."""
    folder = cached_path(entry).parent
    kept = {cached_path(entry).name, record_path(entry).name}
    return sorted(p.name for p in folder.iterdir() if p.name not in kept) if folder.is_dir() else []


def test_failed_fetches_leave_no_lock_file(weights_home, file_server):
    """A broken transfer keeps only its .part (and validator) for the resume; a checksum mismatch and a
    refused connection leave nothing; a successful fetch leaves the file and its record."""
    entry = make_entry("w", _serve(file_server), _sha_pin())
    file_server.state.cut_after.append(100_000)
    with pytest.raises(DownloadError):
        fetch(entry, progress=False)
    assert _leftovers(entry) == ["w.pt.part"] or _leftovers(entry) == ["w.pt.part", "w.pt.part.validator"]
    fetch(entry, progress=False)
    assert _leftovers(entry) == []
    wrong = make_entry("x", _serve(file_server, "/x.pt"), _sha_pin(hashlib.sha256(OTHER).hexdigest()))
    with pytest.raises(ChecksumMismatchError):
        fetch(wrong, progress=False)
    assert _leftovers(wrong) == []
    refused = make_entry("y", "http://127.0.0.1:9/none.pt", None)
    with pytest.raises(DownloadError):
        fetch(refused, progress=False, timeout=5)
    assert _leftovers(refused) == []


def test_connection_refused_is_a_download_error(weights_home):
    entry = make_entry("w", "http://127.0.0.1:9/none.pt", None)  # port 9 (discard): nothing listens
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch(entry, progress=False, timeout=5)


@pytest.mark.parametrize("variable", ["AGOMNI_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_mode_never_reaches_the_server(weights_home, file_server, monkeypatch, variable):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    monkeypatch.setenv(variable, "1")
    with pytest.raises(OfflineError) as info:
        resolve(entry, progress=False)
    message = str(info.value)
    assert f"agomni weights import w /path/to/{entry.filename}" in message
    assert str(cached_path(entry)) in message and entry.url in message
    assert file_server.state.requests == []


def test_offline_mode_uses_the_verified_cache(weights_home, file_server, monkeypatch):
    entry = make_entry("w", _serve(file_server), _sha_pin())
    fetch(entry, progress=False)
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    assert resolve(entry, progress=False).read_bytes() == DATA
    assert sha256_of(entry) == SHA
    assert len(file_server.state.requests) == 1


def test_entry_without_url_explains_how_to_get_it(weights_home):
    entry = make_entry("own", None, None, manual="produced by `agomni train`")
    with pytest.raises(WeightsError, match="produced by `agomni train`"):
        fetch(entry, progress=False)


def test_mirror_url_is_still_checked_against_the_pin(weights_home, file_server):
    entry = make_entry("w", file_server.url("/gone.pt"), _sha_pin())
    mirror = _serve(file_server, "/mirror/ckpt.pt")
    assert fetch(entry, url=mirror, progress=False).read_bytes() == DATA
    assert read_record(entry).source == mirror
    bad_mirror = _serve(file_server, "/bad/ckpt.pt", OTHER)
    entry2 = make_entry("w2", None, _sha_pin())
    with pytest.raises(ChecksumMismatchError):
        fetch(entry2, url=bad_mirror, progress=False)


def test_tofu_records_first_use_and_detects_a_later_change(weights_home, file_server):
    entry = make_entry("u", _serve(file_server), None)
    fetch(entry, progress=False)
    record = read_record(entry)
    assert record.trust == "tofu" and record.sha256 == SHA and record.pin is None
    prov = provenance(entry)
    assert (
        prov["sha256"] == SHA
        and prov["trust"] == prov["trust_class"] == "tofu"
        and prov["source"] == entry.url
    )

    # the publisher swaps the file: a re-download no longer matches what was recorded at first use
    cached_path(entry).unlink()
    _serve(file_server, data=OTHER)
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(entry, progress=False)
    assert f"expected {SHA}" in str(info.value) and hashlib.sha256(OTHER).hexdigest() in str(info.value)
    assert not cached_path(entry).exists() and not part_path(entry).exists()


def test_tofu_load_detects_a_modified_cached_file(weights_home, file_server):
    entry = make_entry("u", _serve(file_server), None)
    path = fetch(entry, progress=False)
    with open(path, "r+b") as f:
        f.seek(1234)
        byte = f.read(1)
        f.seek(1234)
        f.write(bytes([byte[0] ^ 0xFF]))
    flipped = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ChecksumMismatchError) as info:
        resolve(entry, progress=False)
    assert f"expected {SHA}" in str(info.value) and f"got {flipped}" in str(info.value)
    state = verify(entry)
    assert state.status == "corrupt" and state.expected == SHA and state.got == flipped


def test_offline_fetch_of_a_corrupt_cached_file_keeps_it_and_explains(weights_home, file_server, monkeypatch):
    entry = make_entry("u", _serve(file_server), _sha_pin())
    path = fetch(entry, progress=False)
    path.write_bytes(OTHER)
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(ChecksumMismatchError, match="offline mode, so not downloading it again"):
        fetch(entry, progress=False)
    assert path.read_bytes() == OTHER and len(file_server.state.requests) == 1
    monkeypatch.delenv("AGOMNI_OFFLINE")
    assert fetch(entry, progress=False).read_bytes() == DATA  # online, the corrupt copy is replaced


def test_prefix_pin_checks_the_prefix_and_records_the_full_hash(weights_home, file_server):
    entry = make_entry("p", _serve(file_server), Pin("sha256-prefix", SHA[:8], "file-name prefix"))
    fetch(entry, progress=False)
    record = read_record(entry)
    assert (
        record.trust == "pinned-prefix" and record.sha256 == SHA and record.pin == f"sha256-prefix:{SHA[:8]}"
    )
    wrong_prefix = format((int(SHA[:8], 16) + 1) % 16**8, "08x")
    bad = make_entry("p2", _serve(file_server), Pin("sha256-prefix", wrong_prefix, "file-name prefix"))
    with pytest.raises(ChecksumMismatchError, match=f"expected {wrong_prefix}, got {SHA}"):
        fetch(bad, progress=False)
    assert not cached_path(bad).exists()


def test_md5_pin_checks_md5_and_records_sha256(weights_home, file_server):
    entry = make_entry("m", _serve(file_server), Pin("md5", MD5, "Zenodo"))
    fetch(entry, progress=False)
    record = read_record(entry)
    assert record.trust == "pinned-md5" and record.sha256 == SHA and record.pin == f"md5:{MD5}"
    assert provenance(entry)["trust_class"] == "pinned" and provenance(entry)["pin_source"] == "Zenodo"
    wrong = hashlib.md5(OTHER).hexdigest()
    bad = make_entry("m2", _serve(file_server), Pin("md5", wrong, "Zenodo"))
    with pytest.raises(ChecksumMismatchError, match=f"MD5.*expected {wrong}, got {MD5}"):
        fetch(bad, progress=False)
    assert not cached_path(bad).exists() and not part_path(bad).exists()


def test_exact_size_is_enforced(weights_home, file_server):
    entry = make_entry("s", _serve(file_server), None, size_bytes=len(DATA) + 1, size_exact=True)
    with pytest.raises(
        ChecksumMismatchError, match=f"{len(DATA)} bytes, the registry expects {len(DATA) + 1}"
    ):
        fetch(entry, progress=False)


def test_import_matching_file(weights_home, tmp_path):
    src = tmp_path / "local.pt"
    src.write_bytes(DATA)
    entry = make_entry("i", None, _sha_pin())
    path = import_file(entry, src)
    assert path.read_bytes() == DATA and src.read_bytes() == DATA
    record = read_record(entry)
    assert record.trust == "pinned-sha256" and record.source == f"import:{src.resolve()}"


def test_import_mismatch_leaves_nothing(weights_home, tmp_path):
    src = tmp_path / "local.pt"
    src.write_bytes(OTHER)
    entry = make_entry("i", None, _sha_pin())
    with pytest.raises(ChecksumMismatchError, match=f"expected {SHA}"):
        import_file(entry, src)
    folder = cached_path(entry).parent
    assert not folder.exists() or list(folder.iterdir()) == []


def test_import_unpinned_records_tofu_then_refuses_a_different_file(weights_home, tmp_path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    first.write_bytes(DATA)
    second.write_bytes(OTHER)
    entry = make_entry("own", None, None)
    import_file(entry, first)
    assert read_record(entry).trust == "tofu" and read_record(entry).sha256 == SHA
    with pytest.raises(ChecksumMismatchError, match="recorded"):
        import_file(entry, second)
    assert cached_path(entry).read_bytes() == DATA


def test_import_of_a_missing_path_is_an_error(weights_home, tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        import_file(make_entry("i", None, None), tmp_path / "absent.pt")


def test_damaged_record_is_reported(weights_home, tmp_path):
    src = tmp_path / "a.pt"
    src.write_bytes(DATA)
    entry = make_entry("r", None, None)
    import_file(entry, src)
    record_path(entry).write_text("{not json")
    with pytest.raises(WeightsError, match="unreadable weights record"):
        read_record(entry)

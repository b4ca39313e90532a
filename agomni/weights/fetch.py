"""Download a registry entry into the cache: resumable, verified, atomic, and never when offline.

The transfer goes into ``<filename>.part``; an interrupted transfer is resumed with an HTTP Range
request on the next fetch. The finished ``.part`` is hashed and checked against the entry's pin (and
any earlier trust-on-first-use record) before it is renamed into place, so the cache only ever holds
verified files: a mismatch deletes the ``.part`` and raises ChecksumMismatchError with expected vs
got. Only the standard library (urllib) talks to the network; tqdm shows progress on stderr.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..errors import ChecksumMismatchError, DownloadError, OfflineError, WeightsError
from ..paths import offline
from .registry import WeightsEntry, get_entry
from .store import cached_path, check_digests, hash_file, install, part_path, verify

_CHUNK = 1 << 16


def offline_instructions(entry: WeightsEntry, url: str | None = None) -> str:
    """What to do without network: which file to place where, and the import command."""
    url = url or entry.url
    origin = f" (download it elsewhere from {url})" if url else f" ({entry.manual})" if entry.manual else ""
    return (
        f"get {entry.filename}{origin}, then run `agomni weights import {entry.name} /path/to/{entry.filename}`; "
        f"it is verified and stored as {cached_path(entry)}"
    )


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock so that two processes never write the same .part file; the lock
    file is removed when the holder is done, whether the fetch worked or failed (no stale lock files).

    A waiter that was queued on a lock file its holder has since removed finds the file gone or
    replaced once it gets the lock, and queues again on the current one."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent fetches of one file are unsupported there
        yield
        return
    while True:
        with open(lock, "a") as handle:  # closing releases the lock, after the file is gone
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                current = os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if current:
                try:
                    yield
                finally:
                    lock.unlink(missing_ok=True)
                return


def _open(url: str, headers: dict[str, str], timeout: float) -> http.client.HTTPResponse:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:
            return err  # an HTTPError is a response too; the caller reads its Content-Range
        hint = " (the file is not at this URL; pass a mirror with --url or import a local copy)"
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}{hint if err.code == 404 else ''}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{url}: cannot connect ({reason})") from err


def _range_start_and_total(content_range: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/200`` -> (100, 200); ``bytes */200`` -> (None, 200); unparsable -> (None, None)."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (content_range or "").strip())
    if match is None:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def download(url: str, part: Path, *, progress: bool = True, timeout: float = 60.0, desc: str = "") -> int:
    """Download `url` into `part`, resuming from its current length. Returns the final size in bytes.

    A resumed request carries ``Range: bytes=<len>-`` and, when the first response named one, an
    ``If-Range`` validator (ETag or Last-Modified, kept next to the part file) so that a file changed
    on the server is fetched whole again instead of being spliced. A server that answers 200 instead
    of 206, or a Content-Range that does not start at the part's length, restarts from byte 0; a 416
    whose total equals the part's length means the part is already complete. A broken connection
    raises DownloadError and keeps `part` for the next attempt.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    validator_file = part.with_name(part.name + ".validator")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": f"agomni/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator_file.is_file():
            headers["If-Range"] = validator_file.read_text(encoding="utf-8").strip()
    response = _open(url, headers, timeout)
    with response:
        if response.status == 416:
            _, total = _range_start_and_total(response.headers.get("Content-Range"))
            if total == offset:
                return offset
            if not offset:
                raise DownloadError(f"{url}: HTTP 416 for a request without a Range header")
            part.unlink(missing_ok=True)  # the part does not belong to the file now served
            return download(url, part, progress=progress, timeout=timeout, desc=desc)
        if offset and (
            response.status != 206
            or _range_start_and_total(response.headers.get("Content-Range"))[0] != offset
        ):
            offset = 0
        if offset == 0:
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if validator:
                validator_file.write_text(validator, encoding="utf-8")
            else:
                validator_file.unlink(missing_ok=True)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        written = offset
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=desc or part.name, file=sys.stderr, disable=not progress, leave=False,
            ) as bar,
        ):  # fmt: skip
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise DownloadError(
                    f"{url}: connection broken after {written} of {total or '?'} bytes ({err}); the partial "
                    f"file is kept at {part} and the next fetch resumes it"
                ) from err
    if total is not None and written != total:
        raise DownloadError(
            f"{url}: transfer ended after {written} of {total} bytes; the partial file is kept at {part} "
            "and the next fetch resumes it"
        )
    validator_file.unlink(missing_ok=True)
    return written


def fetch(
    entry: WeightsEntry | str, *, url: str | None = None, progress: bool = True, timeout: float = 60.0
) -> Path:
    """Make sure `entry` is in the cache and verified; download it if needed. Returns its path.

    `url` overrides the registry's URL (a mirror); the file is still checked against the entry's pin.
    In offline mode (``AGOMNI_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) nothing is downloaded: OfflineError
    says which file to place where.
    """
    entry = get_entry(entry) if isinstance(entry, str) else entry
    target = cached_path(entry)
    if target.is_file():
        state = verify(entry)
        if state.ok:
            return target
        if state.status == "unrecorded":
            raise WeightsError(f"{entry.name}: {target}: {state.detail}")
        if offline():
            raise ChecksumMismatchError(
                f"{state.detail}; offline mode, so not downloading it again: "
                + offline_instructions(entry, url)
            )
        print(f"agomni weights: {state.detail}; downloading it again", file=sys.stderr)
        target.unlink()
    source = url or entry.url
    if offline():
        raise OfflineError(
            f"{entry.name}: offline mode (AGOMNI_OFFLINE or HF_HUB_OFFLINE is set), not downloading; "
            + offline_instructions(entry, source)
        )
    if source is None:
        raise WeightsError(f"{entry.name}: no download URL; {entry.manual or offline_instructions(entry)}")
    part = part_path(entry)
    with _exclusive(part.with_name(entry.filename + ".lock")):
        if target.is_file() and verify(entry).ok:  # another process finished it while we waited
            return target
        download(source, part, progress=progress, timeout=timeout, desc=entry.name)
        digests = hash_file(part)
        try:
            trust = check_digests(entry, digests, source)
        except ChecksumMismatchError:
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".validator").unlink(missing_ok=True)
            raise
        path = install(entry, part, digests, trust, source=source)
    if progress:
        print(
            f"agomni weights: {entry.name} stored at {path} (sha256 {digests.sha256}, {trust})",
            file=sys.stderr,
        )
    return path

import os
import stat

import pytest

from agomni.atomic import atomic_write


@pytest.mark.parametrize("durable", [False, True])
def test_writes_the_whole_file_and_creates_the_folder(tmp_path, durable):
    target = tmp_path / "a" / "b.txt"
    assert atomic_write(target, lambda tmp: tmp.write_text("hello"), durable=durable) == target
    assert target.read_text() == "hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "b.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_honour_the_umask_like_a_plain_open(tmp_path, umask):
    """Not the 0600 of a temporary file: a shared cache or output folder must stay readable."""
    old = os.umask(umask)
    try:
        target = atomic_write(tmp_path / "shared.json", lambda tmp: tmp.write_text("{}"))
        plain = tmp_path / "plain.json"
        plain.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask

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

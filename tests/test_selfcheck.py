import json

from agomni import selfcheck
from agomni.cli import main


def test_selfcheck_passes_and_keeps_its_files(tmp_path, capsys):
    out = tmp_path / "kept"
    assert main(["selfcheck", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{len(selfcheck.CHECKS)} passed, 0 failed" in text
    results = json.loads((out / "results.json").read_text())
    # Independent look at what the self-check wrote: two tones paired, one recorded missing.
    statuses = sorted(c["status"] for c in results["coverage"])
    assert statuses == ["missing", "ok", "ok"]
    assert results["metrics"][0]["unit"] == "Hz" and results["metrics"][0]["higher_is_better"] is False


def test_a_failing_check_fails_the_command(monkeypatch, tmp_path, capsys):
    def broken(ws):
        raise AssertionError("planted failure")

    monkeypatch.setattr(selfcheck, "CHECKS", (*selfcheck.CHECKS[:1], ("planted", broken)))
    assert main(["selfcheck", "--out", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out
    assert "FAIL  planted" in out and "planted failure" in out and "1 passed, 1 failed" in out


def test_out_folder_must_be_empty(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    assert main(["selfcheck", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err

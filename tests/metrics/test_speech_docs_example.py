"""The agomni.metrics.speech docstring example runs, on the committed utterances (paths substituted)."""

from __future__ import annotations

import re

import pytest

import agomni.metrics.speech as speech
from tests.metrics.speech_fixtures import DATA


@pytest.mark.slow
def test_the_module_docstring_example_runs(capsys) -> None:
    example = speech.__doc__.split("::", 1)[1]
    code = "\n".join(line[4:] for line in example.splitlines())
    code = code.replace("gen/utt1.flac", str(DATA / "f2_6.flac")).replace(
        "prompts/utt1.wav", str(DATA / "f2_2.flac")
    )
    exec(compile(code, "agomni.metrics.speech example", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"WER = [0-9.]+ utterance mean, [0-9.]+ corpus \[fraction; lower is better", out)
    assert re.search(r"SIM = [0-9.]+ \[cosine; higher is better; recipe agomni-offline", out)

"""The README's commands point at things that exist, and CI runs the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    test_command = first_block.splitlines()[1].split("#", 1)[0].strip()
    assert test_command == "bash .ci/setup && .venv/bin/python -m pytest -q"
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_repository_path_the_readme_names_exists():
    paths = set(
        re.findall(
            r"(?<![\w/])((?:agomni|benchmarks|evaluation|\.ci)/[\w./-]+\.(?:safetensors|json|py|md|txt))",
            README,
        )
    )
    assert "agomni/model/checkpoints/tiny-16k-toy.safetensors" in paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_the_python_api_example_runs_on_the_toy_corpus(tmp_path, monkeypatch, capsys):
    """The README's Python block, run where the README says: after building the toy corpus and generating."""
    from agomni.cli import main
    from agomni.toycorpus import build_corpus

    build_corpus(tmp_path / "toy", n_train=1, n_heldout=1)
    code = README.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    checkpoint = ROOT / "agomni/model/checkpoints/tiny-16k-toy.safetensors"
    argv = ["generate", "--checkpoint", str(checkpoint), "--manifest", "toy/heldout/manifest.jsonl"]
    assert main([*argv, "--out", "generated", "--steps", "2"]) == 0
    capsys.readouterr()
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("torch.Size([1, 32000])")  # 2 s toy items at 16 kHz, mono
    assert printed.count("'ok'") == 6  # one held-out item per task, each paired

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

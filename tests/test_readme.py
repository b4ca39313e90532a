"""The README's commands point at things that exist, and CI runs the README's test command."""

import json
import re
from pathlib import Path

import pytest

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


@pytest.mark.slow  # two toy checkpoints on 6 held-out items at 8 steps, plus scoring (about 1 min)
def test_the_training_loop_example_logs_every_metric_to_tensorboard(tmp_path, monkeypatch):
    """The README's training-loop block, run as written: TensorBoard's own reader finds every metric of
    each run's results.json (read here as plain JSON) at its checkpoint step, labelled."""
    pytest.importorskip("tensorboard", reason="pip install -e '.[test]' installs tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from agomni.toycorpus import build_corpus

    block = next(b for b in README.split("```python\n")[1:] if "SummaryWriter" in b).split("```", 1)[0]
    build_corpus(tmp_path / "toy", n_train=1, n_heldout=1)
    (tmp_path / "agomni/model").mkdir(parents=True)
    (tmp_path / "agomni/model/checkpoints").symlink_to(ROOT / "agomni/model/checkpoints")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    events = EventAccumulator(str(tmp_path / "runs/tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    for step in (500, 2000):
        doc = json.loads((tmp_path / f"runs/eval-step-{step}/results.json").read_text())
        assert doc["provenance"]["random_weights"] is True
        for metric in doc["metrics"]:
            (tag,) = [t for t in tags if t.startswith(f"smoke/{metric['name']} [")]
            assert metric["unit"] in tag and "is better" in tag and tag.endswith("(RANDOM WEIGHTS)")
            (point,) = [s for s in events.Scalars(tag) if s.step == step]
            assert point.value == pytest.approx(metric["value"], rel=1e-6)  # stored as float32
    assert len(tags) == 3  # fd_offline, kad_offline, fm_validation_loss

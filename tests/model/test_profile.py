"""`agomni profile`: the parameter table and the per-stage timing table (CPU, tiny size)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from agomni.cli import main
from agomni.manifest import Item
from agomni.model import AgomniMMDiT, model_config
from agomni.model.checkpoint import load_codec, load_model_checkpoint
from agomni.model.checkpoints import TOY_FINAL
from agomni.model.conditioning import item_conditions
from agomni.model.generate import AudioGenerator, batch_inputs, derive_seed, generate
from agomni.model.profile import STAGES, Clock, timed_render

ROOT = Path(__file__).resolve().parents[2]


def test_params_last_line_is_the_total_of_the_components_and_of_the_network(capsys):
    assert main(["profile", "--size", "tiny", "--params"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {}
    for line in lines[2:]:
        name, millions, _share = line.rsplit(maxsplit=2)
        rows[name.strip()] = float(millions)
    assert lines[-1].startswith("total")
    total = rows.pop("total")
    rows.pop("of which LT stream (sum of the LT rows)")
    independent = sum(p.numel() for p in AgomniMMDiT(model_config("tiny")).parameters())
    assert total == round(independent / 1e6, 2)
    # each printed row is rounded to 0.01 M, so their sum may differ from the total by half a unit per row
    assert abs(sum(rows.values()) - total) <= 0.005 * len(rows) + 1e-9
    assert len(rows) == 12


def test_timing_table_has_every_stage_and_the_rtf(tmp_path, capsys):
    report_path = tmp_path / "p.json"
    argv = ["profile", "--size", "tiny", "--duration", "2", "--steps", "3", "--repeats", "2"]
    assert main([*argv, "--json", str(report_path)]) == 0
    captured = capsys.readouterr()
    assert "RANDOM WEIGHTS" in captured.out and "RANDOM WEIGHTS" in captured.err
    for label in [*STAGES, "real-time factor (RTF)"]:
        label = label.replace("all steps", "3 steps")
        assert any(line.startswith(label) for line in captured.out.splitlines()), label
    report = json.loads(report_path.read_text())
    assert set(report["stages"]) == set(STAGES) and report["random_weights"] is True
    assert report["machine"]["torch"] and report["machine"]["cpu"]
    stages = report["stages"]
    for r, steps in enumerate(report["steps_s"]):
        assert len(steps) == 3
        assert math.isclose(stages["network total (all steps)"]["runs_s"][r], sum(steps), rel_tol=1e-9)
        assert stages["network step (max)"]["runs_s"][r] == max(steps)
        # RTF = generation seconds / audio seconds (batch 1 x 2 s)
        assert math.isclose(report["rtf"]["runs_s"][r], stages["total"]["runs_s"][r] / 2.0, rel_tol=1e-9)
        parts = (
            "conditioning (encoders)",
            "conditioning (network)",
            "network total (all steps)",
            "codec decode (VAE)",
            "vocoder",
        )
        # the stages partition the run: their sum is the total up to the clock reads between them
        assert math.isclose(
            sum(stages[p]["runs_s"][r] for p in parts), stages["total"]["runs_s"][r], rel_tol=1e-6
        )
    assert report["first_run_network_s"] > 0 and report["peak_memory_mib"] > 0
    assert report["settings"]["dtype"] == "fp32" and report["settings"]["compile"] is False  # CPU defaults
    for row in stages.values():
        assert row["min_s"] <= row["median_s"] <= row["max_s"] and len(row["runs_s"]) == 2


def test_gpu_latency_script_runs_on_cpu_with_the_tiny_size(tmp_path):
    script = ROOT / "benchmarks" / "gpu_latency.py"
    args = ["--sizes", "tiny", "--device", "cpu", "--duration", "2", "--steps", "2", "--repeats", "1"]
    args += ["--batches", "1,2", "--modes", "fp32,bf16"]
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "gpu_latency.json").read_text())
    runs = [(r["settings"]["batch"], r["mode"], r["status"]) for r in results["profiles"]]
    assert runs == [(1, "fp32", "ok"), (1, "bf16", "ok"), (2, "fp32", "ok"), (2, "bf16", "ok")]
    (check,) = results["numerical_checks"]
    assert check["status"] == "ok" and 0 < check["latent_rel_l2"] < 0.05 and check["wave_rel_l2"] >= 0
    codec = check["codec_bf16"]  # the script's random tiny codec has a neural (BigVGAN-style) vocoder
    assert 0 < codec["mel_rel_l2"] < 0.05 and codec["vae_bf16_s"] > 0 and codec["vocoder_bf16_s"] > 0
    assert codec["vocoder"] == "neural, compared" and 0 < codec["wave_rel_l2"] < 1
    table = (tmp_path / "gpu_latency.md").read_text()
    assert "| tiny-16k | 1 | fp32 | ok |" in table and "| tiny-16k | 2 | bf16 | ok |" in table
    assert "codec in bf16" in table and "vocoder neural, compared" in table


def test_codec_precision_check_on_the_shipped_toy_codec():
    """The GPU script's codec check on the trained toy codec: its VAE decodes the latents of two noisy tones
    in bf16 within 2 % relative L2 of float32 (measured 0.0067 here; 0.002-0.004 on the toy corpus'
    held-out audio); its Griffin-Lim vocoder has no weights and stays float32 (no bf16 timing, no wave
    comparison)."""
    spec = importlib.util.spec_from_file_location("gpu_latency", ROOT / "benchmarks" / "gpu_latency.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    codec = load_codec(load_model_checkpoint(TOY_FINAL))
    g = torch.Generator().manual_seed(0)
    t = torch.arange(32_000) / 16_000
    waves = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (220.0, 880.0)])
    waves = waves + 0.05 * torch.randn(waves.shape, generator=g)
    with torch.no_grad():
        latent = codec.encode(waves).mean
    check = script.codec_precision_check(codec, latent, repeats=1)
    assert 0 < check["mel_rel_l2"] < 0.02 and check["vae_bf16_s"] > 0 and check["vocoder_fp32_s"] > 0
    assert check["vocoder"] == "weight-free, float32 only" and "vocoder_bf16_s" not in check


def test_the_profiler_times_the_generation_generate_makes():
    """The profiler's timed path (`timed_render`: the generator's render with stage and step hooks) gives
    the wave a one-off `generate` call gives for the same item, seed and settings, bit for bit (CPU, the
    same thread count), while its marks follow the stages in order."""
    item = Item(id="tts-x", task="tts", line=1, text="a calm voice", transcript="hello there", duration=2.0)
    (expected,) = generate([item], TOY_FINAL, seed=5, steps=3)

    generator = AudioGenerator.from_checkpoint(TOY_FINAL, steps=3)
    generator.network.set_duration(2.0)
    sequence, config = generator.network.sequence, generator.network.config
    conditions = item_conditions(item, config, sequence, generator.conditioners)
    noise = torch.randn(
        sequence.latent_len,
        config.latent_dim,
        generator=torch.Generator().manual_seed(derive_seed(5, item.id, 0)),
    )
    clock = Clock(torch.device("cpu"))
    wave, marks = timed_render(generator, batch_inputs([conditions]), noise[None], clock)
    assert torch.equal(wave[0, : expected.wave.numel()], expected.wave)
    assert wave.shape[1] >= expected.wave.numel() == 32_000  # the profiler keeps every decoded sample
    assert len(marks["steps"]) == 4 and marks["steps"][0] is marks["sampling"]  # then one mark per step
    times = [
        marks["network conditioning"],
        *marks["steps"],
        marks["decoding"],
        marks["vocoding"],
        marks["done"],
    ]
    assert times == sorted(times)

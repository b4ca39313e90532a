"""Batching and device placement of the audio-visual networks (SyncNet, Synchformer for DeSync, ImageBind).

Batched outputs equal the one-at-a-time outputs to 1e-5 (eval-mode networks: a window's output does not
depend on its batch). Device placement is checked on the 'meta' device, which needs no GPU: every network
input is recorded by a forward pre-hook, and the scoring stops where a result would be copied back to the
CPU (a meta tensor holds no values).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from agomni.metrics.av.desync import DeSyncScorer, window_offsets
from agomni.metrics.av.faces import HaarDetector
from agomni.metrics.av.ib_score import IBScorer
from agomni.metrics.av.lipsync import LipSyncScorer
from agomni.metrics.av.syncnet import SyncNet, syncnet_features
from tests.metrics.av_fixtures import tiny_synchformer, tiny_towers

FRAMES_8S = torch.randint(
    0, 256, (200, 3, 224, 224), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
)
WAVEFORM_8S = torch.randn(128000, generator=torch.Generator().manual_seed(2)) * 0.1


def faces_and_mfcc(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    faces = torch.rand(frames, 3, 224, 224, generator=generator) * 255
    return faces, torch.randn(13, 4 * frames, generator=generator)


@pytest.fixture(scope="module")
def syncnet() -> SyncNet:
    torch.manual_seed(0)
    return SyncNet().eval()


def test_syncnet_windows_batched_equal_one_at_a_time(syncnet: SyncNet) -> None:
    faces, mfcc = faces_and_mfcc(14)
    windows = 9
    lip_1, aud_1 = syncnet_features(syncnet, faces, mfcc, windows, batch_size=1)
    lip_4, aud_4 = syncnet_features(syncnet, faces, mfcc, windows, batch_size=4)
    assert lip_1.shape == aud_1.shape == (windows, 1024)
    torch.testing.assert_close(lip_4, lip_1, rtol=1e-5, atol=1e-5)  # batches of 4, 4 and 1 windows
    torch.testing.assert_close(aud_4, aud_1, rtol=1e-5, atol=1e-5)
    assert float((lip_1[0] - lip_1[1]).abs().max()) > 1e-3  # windows differ: the comparison means something


@torch.inference_mode()
def test_desync_segments_and_windows_batched_equal_one_at_a_time() -> None:
    torch.manual_seed(0)
    model = tiny_synchformer()
    one = DeSyncScorer(model, random_weights=True, batch_size=1, duration=4.8)  # 14 segments
    many = DeSyncScorer(model, random_weights=True, batch_size=5, duration=4.8)  # batches of 5, 5, 4
    visual_1, audio_1 = one.features(FRAMES_8S, WAVEFORM_8S)
    visual_5, audio_5 = many.features(FRAMES_8S, WAVEFORM_8S)
    assert visual_1.shape[:2] == audio_1.shape[:2] == (1, 14)
    torch.testing.assert_close(visual_5, visual_1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(audio_5, audio_1, rtol=1e-5, atol=1e-5)
    # both windows of two items in one offset-head call == each window on its own
    generator = torch.Generator().manual_seed(4)
    visual = torch.randn(2, 23, *visual_1.shape[2:], generator=generator)  # 23 segments: 8 s
    audio = torch.randn(2, 23, *audio_1.shape[2:], generator=generator)
    separate = torch.stack(
        [
            torch.stack(
                [
                    model.offset_logits(v[None, :14], a[None, :14])[0],
                    model.offset_logits(v[None, -14:], a[None, -14:])[0],
                ]
            )
            for v, a in zip(visual, audio, strict=True)
        ]
    )
    grid = torch.linspace(-2.0, 2.0, 21)
    torch.testing.assert_close(window_offsets(model, visual, audio), grid[separate.argmax(dim=-1)])


@torch.inference_mode()
def test_imagebind_clips_batched_equal_one_at_a_time() -> None:
    torch.manual_seed(0)
    towers = tiny_towers()
    one = IBScorer(towers, random_weights=True, batch_size=1)
    all_at_once = IBScorer(towers, random_weights=True)
    frames = FRAMES_8S[::50]  # 4 frames at 0.5 fps: 9 video clips
    vision_1, audio_1 = one.embed(frames, WAVEFORM_8S[None])
    vision_9, audio_9 = all_at_once.embed(frames, WAVEFORM_8S[None])
    torch.testing.assert_close(vision_9, vision_1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(audio_9, audio_1, rtol=1e-5, atol=1e-5)


@contextmanager
def input_devices(modules: dict[str, nn.Module]) -> Iterator[dict[str, set[torch.device]]]:
    """name -> devices of the tensors each module was called with (forward pre-hooks)."""
    seen: dict[str, set[torch.device]] = {name: set() for name in modules}
    handles = [
        module.register_forward_pre_hook(
            lambda _, args, name=name: seen[name].update(
                a.device for a in args if isinstance(a, torch.Tensor)
            )
        )
        for name, module in modules.items()
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


META = torch.device("meta")


def test_syncnet_runs_on_the_scorer_device(syncnet: SyncNet) -> None:
    scorer = LipSyncScorer(syncnet, HaarDetector(), random_weights=True, device="meta", batch_size=4)
    faces, mfcc = faces_and_mfcc(14)
    modules = {"lip": scorer.syncnet.netcnnlip, "audio": scorer.syncnet.netcnnaud}
    with input_devices(modules) as seen, pytest.raises(NotImplementedError, match="meta"):
        syncnet_features(scorer.syncnet, faces, mfcc, 9, scorer.batch_size)
    assert seen == {"lip": {META}, "audio": {META}}
    assert {p.device for p in scorer.syncnet.parameters()} == {META}


def test_desync_networks_run_on_the_scorer_device() -> None:
    scorer = DeSyncScorer(tiny_synchformer(), random_weights=True, device="meta")
    model = scorer.model
    modules = {"video": model.vfeat_extractor, "audio": model.afeat_extractor, "head": model.transformer}
    with input_devices(modules) as seen, pytest.raises(NotImplementedError, match="meta"):
        visual, audio = scorer.features(FRAMES_8S, WAVEFORM_8S)
        window_offsets(model, visual, audio)
    assert seen == {"video": {META}, "audio": {META}, "head": {META}}
    assert {p.device for p in model.parameters()} == {META}


def test_imagebind_towers_run_on_the_scorer_device() -> None:
    scorer = IBScorer(tiny_towers(), random_weights=True, device="meta")
    trunks = scorer.towers.modality_trunks
    modules = {"vision": trunks["vision"], "audio": trunks["audio"]}
    with input_devices(modules) as seen, pytest.raises(NotImplementedError, match="meta"):
        scorer.embed(FRAMES_8S[::50], WAVEFORM_8S[None])
    assert seen == {"vision": {META}, "audio": {META}}
    assert {p.device for p in scorer.towers.parameters()} == {META}

"""`agomni eval` releases its embedder networks after the item loop, before the per-item stages build
their own networks, and the results still describe the released networks."""

from __future__ import annotations

import gc
import weakref

from agomni.evaluate import pipeline
from agomni.evaluate.item_stages import ItemStages
from agomni.evaluate.pipeline import EvalRequest, evaluate
from tests.eval_fixtures import write_sets


def test_embedders_are_released_before_the_per_item_stages(tmp_path, monkeypatch):
    pred, ref = write_sets(tmp_path, 4)
    built: list[weakref.ref] = []
    alive_at_stages: list[int] = []
    build = pipeline.build_networks

    def recording_build(*args, **kwargs):
        networks, metrics, unbuilt = build(*args, **kwargs)
        built.extend(weakref.ref(n.embedder) for n in networks)
        return networks, metrics, unbuilt

    stages_run = ItemStages.run

    def checking_run(self, *args, **kwargs):
        gc.collect()
        alive_at_stages.append(sum(ref() is not None for ref in built))
        return stages_run(self, *args, **kwargs)

    monkeypatch.setattr(pipeline, "build_networks", recording_build)
    monkeypatch.setattr(ItemStages, "run", checking_run)
    request = EvalRequest(pred_dir=pred, ref_dir=ref, metrics=("fd_offline", "kad_offline"), progress=False)
    outcome = evaluate(request)
    assert len(built) == 1  # both metrics read one network
    assert alive_at_stages == [0]
    described = outcome.results.provenance.preprocessing["embedders"]
    assert len(described) == 1 and "checkpoint" in next(iter(described.values()))
    assert {m.name for m in outcome.results.metrics} == {"fd_offline", "kad_offline"}


def test_freed_memory_is_released_every_few_chunks_and_after_the_embedders(tmp_path, monkeypatch):
    """5 items at batch size 1 with a release every 2 chunks: after chunks 2 and 4, then once after the
    embedders are dropped; the metric values are those of a run without releases."""
    pred, ref = write_sets(tmp_path, 5)
    calls: list[int] = []
    monkeypatch.setattr(pipeline, "RELEASE_EVERY", 2)
    monkeypatch.setattr(pipeline, "release_freed_memory", lambda: calls.append(1) or True)
    request = EvalRequest(pred_dir=pred, ref_dir=ref, metrics=("fd_offline",), batch_size=1, progress=False)
    released = evaluate(request).results.metrics
    assert len(calls) == 3
    monkeypatch.setattr(pipeline, "RELEASE_EVERY", 10**9)
    assert evaluate(request).results.metrics[0].value == released[0].value

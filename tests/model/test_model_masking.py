"""Missing-modality masking: absent == omitted, null vectors, mixed batches, condition dropout."""

from __future__ import annotations

import pytest
import torch

from agomni.model import ModalityPresence, draw_presence
from agomni.model.config import ConditionDropout

from .mmdit_tiny import presence, random_inputs, random_latent, random_tiny

STREAM_INPUTS = {"video": ("clip_f", "sync_f"), "text": ("text_f",), "lt": ("lt_ids",)}


def _flags(absent: str, batch: int) -> ModalityPresence:
    flags = {name: [name != absent] * batch for name in STREAM_INPUTS}
    return presence(**flags)


@pytest.mark.parametrize("absent", list(STREAM_INPUTS))
def test_absent_equals_omitted_and_ignores_its_features(absent):
    """Definition: a stream flagged absent (features given, masked) gives the same velocity as the stream
    omitted altogether (None: no tokens in the attention at all), and its features' values do not matter."""
    model = random_tiny()
    inputs = random_inputs(model, 2)
    latent, t = random_latent(model, 2), torch.tensor([0.2, 0.9])
    masked = model(latent, t, **inputs, presence=_flags(absent, 2))
    omitted = model(latent, t, **{k: (None if k in STREAM_INPUTS[absent] else v) for k, v in inputs.items()})
    torch.testing.assert_close(masked, omitted, atol=1e-5, rtol=0)

    garbage = dict(inputs)
    for key in STREAM_INPUTS[absent]:
        garbage[key] = (
            torch.full_like(inputs[key], 7) if key == "lt_ids" else torch.full_like(inputs[key], 1e4)
        )
    if absent != "lt":
        garbage[STREAM_INPUTS[absent][0]][0, 0, 0] = float("nan")
    torch.testing.assert_close(
        model(latent, t, **garbage, presence=_flags(absent, 2)), masked, atol=1e-5, rtol=0
    )
    present = model(latent, t, **inputs)
    assert (present - masked).abs().max() > 1e-3


@pytest.mark.parametrize("absent", list(STREAM_INPUTS))
def test_null_vectors_stand_in_for_absent_streams(absent):
    model = random_tiny()
    inputs = random_inputs(model, 2)
    latent, t = random_latent(model, 2), torch.tensor([0.5, 0.5])
    flags = presence(**{name: [True, name != absent] for name in STREAM_INPUTS})  # sample 1 lacks `absent`
    before = model(latent, t, **inputs, presence=flags)
    with torch.no_grad():
        getattr(model, f"null_{absent}").add_(0.5)
    after = model(latent, t, **inputs, presence=flags)
    torch.testing.assert_close(after[0], before[0], atol=0, rtol=0)  # present sample: null unused
    assert (after[1] - before[1]).abs().max() > 1e-3  # absent sample: null used

    # By definition the global condition is MLP(mean over streams of the pooled projection, or of the
    # stream's null vector where it is absent); recompose it from the parts.
    cond = model.preprocess_conditions(**inputs, presence=flags)
    tokens = {
        "video": model.clip_in(inputs["clip_f"]),
        "text": model.text_in(inputs["text_f"]),
        "lt": model.lt_in(model.lt_encoder(inputs["lt_ids"])),
    }
    vectors = [
        getattr(model, f"null_{name}")[None]
        if name == absent
        else getattr(model, f"{name}_cond")(tokens[name][1:].mean(1))
        for name in ("video", "text", "lt")
    ]
    torch.testing.assert_close(
        cond.global_c[1:], model.global_mlp(torch.stack(vectors).mean(0)), atol=1e-5, rtol=0
    )
    c = model.empty_conditions(1)
    nulls = torch.stack([model.null_video, model.null_text, model.null_lt]).mean(0, keepdim=True)
    torch.testing.assert_close(c.global_c, model.global_mlp(nulls), atol=1e-6, rtol=0)


def test_absent_video_uses_the_null_sync_vector():
    model = random_tiny()
    inputs = random_inputs(model, 2)
    latent, t = random_latent(model, 2), torch.tensor([0.5, 0.5])
    flags = presence([True, False], [True, True], [True, True])
    before = model(latent, t, **inputs, presence=flags)
    with torch.no_grad():
        model.null_sync.add_(0.5)
    after = model(latent, t, **inputs, presence=flags)
    torch.testing.assert_close(after[0], before[0], atol=0, rtol=0)
    assert (after[1] - before[1]).abs().max() > 1e-3
    # The sync condition of the video-less sample is the fully unconditional one (null sync throughout).
    cond = model.preprocess_conditions(**inputs, presence=flags)
    torch.testing.assert_close(cond.sync_c[1:], model.empty_conditions(1).sync_c, atol=1e-6, rtol=0)


def test_sync_conditions_the_final_layer():
    """MMAudio #55: its final layer saw only the global condition. With every block's gates at zero the
    blocks are identities, so sync can only reach the output through the final layer's condition."""
    model = random_tiny()
    with torch.no_grad():
        for block in [*model.joint, *model.single]:
            for half in block.modules():
                if hasattr(half, "adaln"):
                    half.adaln.linear.weight.zero_()
                    half.adaln.linear.bias.zero_()
    inputs = random_inputs(model, 1)
    latent, t = random_latent(model, 1), torch.tensor([0.5])
    other_sync = {**inputs, "sync_f": inputs["sync_f"] + 1.0}
    assert (model(latent, t, **inputs) - model(latent, t, **other_sync)).abs().max() > 1e-3


def test_mixed_batch_equals_one_by_one():
    model = random_tiny()
    flags = presence(
        video=[True, False, True, False, True],
        text=[True, True, False, False, False],
        lt=[False, True, True, False, True],
    )
    inputs = random_inputs(model, 5)
    latent, t = random_latent(model, 5), torch.linspace(0.1, 0.9, 5)
    batched = model(latent, t, **inputs, presence=flags)
    for i in range(5):
        one = presence(**{name: [bool(getattr(flags, name)[i])] for name in STREAM_INPUTS})
        single = model(
            latent[i : i + 1], t[i : i + 1], **{k: v[i : i + 1] for k, v in inputs.items()}, presence=one
        )
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=0)


def test_presence_for_a_missing_input_is_an_error():
    model = random_tiny()
    inputs = random_inputs(model, 1)
    with pytest.raises(Exception, match="presence marks text present"):
        model.preprocess_conditions(
            clip_f=inputs["clip_f"], sync_f=inputs["sync_f"], presence=ModalityPresence.uniform(1)
        )


def test_draw_presence_is_seeded_and_independent():
    dropout = ConditionDropout(video=0.1, text=0.3, lt=0.5)
    a = draw_presence(40_000, dropout, torch.Generator().manual_seed(5))
    b = draw_presence(40_000, dropout, torch.Generator().manual_seed(5))
    assert all(torch.equal(getattr(a, n), getattr(b, n)) for n in STREAM_INPUTS)
    drop = {n: (~getattr(a, n)).float() for n in STREAM_INPUTS}
    for name, p in (("video", 0.1), ("text", 0.3), ("lt", 0.5)):
        assert abs(drop[name].mean().item() - p) < 0.01  # binomial sd <= 0.0025
    assert abs((drop["video"] * drop["lt"]).mean().item() - 0.05) < 0.006

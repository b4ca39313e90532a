"""The reference MMDiT: audio latents attend jointly to video, lyrics/transcription (LT) and text.

Streams (shapes for batch B, audio-latent frames N from the model's SequenceConfig):
- audio: noisy latents (B, N, latent_dim), the only stream that is predicted;
- video: CLIP features (B, clip_len, clip_dim) at 8 fps as attention tokens, plus Synchformer features
  (B, sync_len, sync_dim) at 24 fps that are NOT tokens: projected, nearest-resampled to N frames and
  added to the audio stream's per-token adaLN condition (MMAudio's recipe);
- LT: frame-aligned token ids (B, N), 0 = filler (see lt_encoder.py), an attention stream aligned
  frame for frame with audio;
- text: token features (B, L, text_dim) of a frozen text encoder, attention tokens without RoPE.

Global condition = timestep embedding + MLP(mean over {video, text, LT} of each stream's projected
token mean, or of that stream's learned null vector when the stream is absent for the sample).

Missing modalities (agomni's choice, the paper only says "masked"): each sample may lack any subset
of {video, text, LT}. An absent stream's features are zeroed, its tokens are removed from joint
attention by the key mask, its global-condition term is its learned null vector, and an absent
video's sync features are replaced by a learned null sync vector. Consequently a sample with a
stream marked absent gives the same output as the same sample with the stream omitted (None).

As in MMAudio, `preprocess_conditions` runs once per sample and `predict_flow` once per sampler step.
The final layer takes the per-token (sync-augmented) condition, fixing MMAudio issue #55.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..weights import load_strict
from .blocks import CONTEXT_STREAMS, TEMPORAL_KERNEL, FinalLayer, JointBlock, StreamBlock
from .config import ConditionDropout, ModelConfig, SequenceConfig
from .layers import MLP, AdaLN, ChannelLastConv1d, ConvMLP, TimestepEmbedder
from .lt_encoder import LTEncoder
from .rope import audio_positions, rope_table, video_positions


@dataclass(frozen=True)
class ModalityPresence:
    """Per-sample presence flags, each a (B,) bool tensor: True = the modality conditions that sample."""

    video: torch.Tensor
    text: torch.Tensor
    lt: torch.Tensor

    def __post_init__(self) -> None:
        shapes = {name: tuple(getattr(self, name).shape) for name in CONTEXT_STREAMS}
        dtypes = {getattr(self, name).dtype for name in CONTEXT_STREAMS}
        if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1 or dtypes != {torch.bool}:
            raise UsageError(f"presence flags must be three (batch,) bool tensors, got shapes {shapes}")

    @property
    def batch(self) -> int:
        return self.video.shape[0]

    @classmethod
    def uniform(
        cls, batch: int, present: bool = True, device: torch.device | str = "cpu"
    ) -> ModalityPresence:
        """Every modality present (or every one absent) for every sample."""
        flags = torch.full((batch,), present, dtype=torch.bool, device=device)
        return cls(video=flags, text=flags.clone(), lt=flags.clone())


def draw_presence(batch: int, dropout: ConditionDropout, generator: torch.Generator) -> ModalityPresence:
    """Training-time condition dropout: drop each modality of each sample independently with its probability.

    Draws uniforms from `generator` (on its device) in the order video, text, LT.
    """
    u = torch.rand((3, batch), generator=generator, device=generator.device)
    return ModalityPresence(video=u[0] >= dropout.video, text=u[1] >= dropout.text, lt=u[2] >= dropout.lt)


@dataclass(frozen=True)
class PreprocessedConditions:
    """Conditions computed once per sample, reused at every sampler step.

    global_c: (B, D) MLP output of the pooled stream vectors (the timestep embedding is added per step);
    sync_c: (B, N, D) Synchformer projection at audio-frame rate; context: projected tokens of the
    streams taking part in attention, in the order video, lt, text, each (B, L_s, D); key_mask:
    (B, L_s) bool per context stream, True = the token may be attended to; attn_mask: the joint
    attention's key mask (B, N + sum L_s) in the order [audio | video | lt | text], or None when every
    key may be attended to (SDPA then takes its unmasked kernels). `with_masks` builds it once per
    sample, so the sampling loop never reads a flag back from the device.
    """

    global_c: torch.Tensor
    sync_c: torch.Tensor
    context: Mapping[str, torch.Tensor]
    key_mask: Mapping[str, torch.Tensor]
    attn_mask: torch.Tensor | None = None

    @classmethod
    def with_masks(
        cls,
        global_c: torch.Tensor,
        sync_c: torch.Tensor,
        context: Mapping[str, torch.Tensor],
        key_mask: Mapping[str, torch.Tensor],
    ) -> PreprocessedConditions:
        """Conditions with `attn_mask` computed from the per-stream key masks (one device read)."""
        audio = torch.ones(*sync_c.shape[:2], dtype=torch.bool, device=sync_c.device)
        joint = torch.cat([audio, *(key_mask[name] for name in context)], dim=1)
        return cls(global_c, sync_c, context, key_mask, None if bool(joint.all()) else joint)

    @property
    def batch(self) -> int:
        return self.global_c.shape[0]

    def cat(self, other: PreprocessedConditions) -> PreprocessedConditions:
        """Concatenate along the batch (e.g. conditional + unconditional halves of a CFG pass).

        A stream present in only one operand, or text of different lengths, is filled with zero tokens
        whose key-mask entries are False, so the result equals running the two operands separately.
        """
        context, key_mask = {}, {}
        for name in CONTEXT_STREAMS:
            if name not in self.context and name not in other.context:
                continue
            lengths = {c.context[name].shape[1] for c in (self, other) if name in c.context}
            if len(lengths) > 1 and name != "text":
                raise UsageError(f"cannot batch {name} streams of different lengths {sorted(lengths)}")
            length = max(lengths)
            parts = [_padded_stream(c, name, length) for c in (self, other)]
            context[name] = torch.cat([p[0] for p in parts])
            key_mask[name] = torch.cat([p[1] for p in parts])
        return PreprocessedConditions.with_masks(
            torch.cat([self.global_c, other.global_c]),
            torch.cat([self.sync_c, other.sync_c]),
            context,
            key_mask,
        )


def _padded_stream(c: PreprocessedConditions, name: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One stream of `c` padded with masked zero tokens to `length` (all masked when `c` lacks it)."""
    ref = c.global_c
    if name not in c.context:
        tokens = ref.new_zeros(c.batch, length, ref.shape[-1])
        return tokens, torch.zeros(c.batch, length, dtype=torch.bool, device=ref.device)
    tokens, mask = c.context[name], c.key_mask[name]
    pad = length - tokens.shape[1]
    return F.pad(tokens, (0, 0, 0, pad)), F.pad(mask, (0, pad), value=False)


class AgomniMMDiT(nn.Module):
    """Flow-prediction network. Build with `AgomniMMDiT(config)`; `set_duration` re-times the RoPE tables."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.hidden_dim
        wide = int(d * config.mlp_ratio)
        mo = config.mlp_multiple_of

        self.audio_in = nn.Sequential(
            ChannelLastConv1d(config.latent_dim, d, kernel_size=7),
            nn.SELU(),
            ConvMLP(d, wide, mo, kernel_size=7),
        )
        self.clip_in = nn.Sequential(nn.Linear(config.clip_dim, d), ConvMLP(d, wide, mo, TEMPORAL_KERNEL))
        self.sync_in = nn.Sequential(
            ChannelLastConv1d(config.sync_dim, d, kernel_size=7),
            nn.SELU(),
            ConvMLP(d, wide, mo, TEMPORAL_KERNEL),
        )
        self.text_in = nn.Sequential(nn.Linear(config.text_dim, d), MLP(d, wide, mo))
        self.lt_encoder = LTEncoder(
            config.lt_vocab_size, config.lt_dim, config.lt_blocks, config.lt_conv_mult
        )
        self.lt_in = nn.Sequential(
            ChannelLastConv1d(config.lt_dim, d, TEMPORAL_KERNEL),
            nn.SELU(),
            ConvMLP(d, wide, mo, TEMPORAL_KERNEL),
        )
        # Synchformer position within its segment (each segment yields sync_tokens_per_segment tokens).
        self.sync_pos = nn.Parameter(torch.zeros(config.sequence.sync_tokens_per_segment, config.sync_dim))
        self.null_sync = nn.Parameter(torch.zeros(config.sync_dim))
        self.video_cond = nn.Linear(d, d)
        self.text_cond = nn.Linear(d, d)
        self.lt_cond = nn.Linear(d, d)
        self.null_video = nn.Parameter(torch.zeros(d))
        self.null_text = nn.Parameter(torch.zeros(d))
        self.null_lt = nn.Parameter(torch.zeros(d))
        self.global_mlp = MLP(d, wide, mo)
        self.t_embed = TimestepEmbedder(d)

        block_args = {"mlp_ratio": config.mlp_ratio, "multiple_of": mo}
        self.joint = nn.ModuleList(
            [
                JointBlock(d, config.num_heads, last=i == config.joint_blocks - 1, **block_args)
                for i in range(config.joint_blocks)
            ]
        )
        self.single = nn.ModuleList(
            [
                StreamBlock(d, config.num_heads, kernel_size=TEMPORAL_KERNEL, kv_only=False, **block_args)
                for _ in range(config.single_blocks)
            ]
        )
        self.final = FinalLayer(d, config.latent_dim)
        self.sequence = config.sequence
        self._build_rope(config.sequence)
        # Latent normalisation (MMAudio keeps it inside the network): the network works on
        # (latent - mean) / std per channel. Not in the state dict: a checkpoint's sidecar carries it
        # ("latent_stats") and `agomni.model.checkpoint.build_network` sets it.
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim), persistent=False)
        self.register_buffer("latent_std", torch.ones(config.latent_dim), persistent=False)
        if self.null_video.device.type != "meta":  # built on the meta device, the weights are assigned
            self.reset_parameters()

    # --- set-up ---------------------------------------------------------------------------------

    def _build_rope(self, sequence: SequenceConfig) -> None:
        device = self.null_video.device
        hd, theta = self.config.head_dim, self.config.rope_theta
        self.register_buffer("rope_audio", rope_table(audio_positions(sequence), hd, theta).to(device), False)
        self.register_buffer("rope_video", rope_table(video_positions(sequence), hd, theta).to(device), False)

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel float32 mean and std (latent_dim,) of the codec latents the network was trained on."""
        dim = self.config.latent_dim
        if tuple(mean.shape) != (dim,) or tuple(std.shape) != (dim,) or not bool((std > 0).all()):
            raise UsageError(f"latent statistics must be {dim} means and {dim} positive stds")
        device = self.null_video.device
        self.register_buffer("latent_mean", mean.float().to(device), persistent=False)
        self.register_buffer("latent_std", std.float().to(device), persistent=False)

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Codec latents (B, N, latent_dim) -> the network's units, (latent - mean) / std, float32."""
        return (latent.float() - self.latent_mean) / self.latent_std

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The network's units -> codec latents, x * std + mean, float32."""
        return x.float() * self.latent_std + self.latent_mean

    def cast(self, dtype: torch.dtype) -> AgomniMMDiT:
        """Weights in `dtype` (bf16 for the fast path: no autocast over fp32 weights); the RoPE tables,
        timestep frequencies and latent statistics stay float32. Returns self."""
        stats = (self.latent_mean.float(), self.latent_std.float())
        self.to(dtype)
        self.rebuild_tables()
        self.set_latent_stats(*stats)
        return self

    def rebuild_tables(self) -> None:
        """Rebuild the float32 RoPE tables and timestep frequencies on the weights' device (after a cast,
        or after weights were assigned into a network built on the meta device); the latent statistics
        are reset to identity when they are not on that device."""
        self._build_rope(self.sequence)
        self.t_embed.reset_frequencies()
        if self.latent_mean.device != self.null_video.device:
            dim = self.config.latent_dim
            self.set_latent_stats(torch.zeros(dim), torch.ones(dim))

    def set_duration(self, duration_s: float) -> None:
        """Re-time the network for clips of `duration_s` seconds (rebuilds the RoPE tables; weights unchanged)."""
        self.sequence = self.sequence.with_duration(duration_s)
        self._build_rope(self.sequence)

    def reset_parameters(self) -> None:
        """MMAudio/DiT initialisation: xavier-uniform Linears with zero bias, N(0, 0.02) timestep MLP,
        zero adaLN projections (every block starts as identity) and a zero final conv."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for layer in (self.t_embed.mlp[0], self.t_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        for module in self.modules():
            if isinstance(module, AdaLN):
                nn.init.zeros_(module.linear.weight)
                nn.init.zeros_(module.linear.bias)
        nn.init.zeros_(self.final.conv.weight)
        nn.init.zeros_(self.final.conv.bias)
        for p in (self.sync_pos, self.null_sync, self.null_video, self.null_text, self.null_lt):
            nn.init.zeros_(p)

    # --- conditions (once per sample) -----------------------------------------------------------

    def preprocess_conditions(
        self,
        *,
        clip_f: torch.Tensor | None = None,
        sync_f: torch.Tensor | None = None,
        text_f: torch.Tensor | None = None,
        lt_ids: torch.Tensor | None = None,
        presence: ModalityPresence | None = None,
        batch_size: int | None = None,
    ) -> PreprocessedConditions:
        """Project the conditioning streams once per sample.

        clip_f (B, clip_len, clip_dim) and sync_f (B, sync_len, sync_dim) come together (video); text_f
        (B, L, text_dim), any L >= 1; lt_ids (B, latent_len) int64, 0 = filler. A stream passed as None
        is absent for every sample; `presence` marks streams absent per sample (its flags must be False
        where the stream is None). With every stream None, give batch_size.
        """
        seq, cfg = self.sequence, self.config
        given = {"video": clip_f, "text": text_f, "lt": lt_ids}
        if (clip_f is None) != (sync_f is None):
            raise UsageError("video needs both clip_f and sync_f (or neither)")
        batch = _batch_size(given, presence, batch_size)
        if presence is None:
            presence = ModalityPresence(
                **{name: torch.full((batch,), x is not None, dtype=torch.bool) for name, x in given.items()}
            )
        device = self.null_video.device
        flags = {name: getattr(presence, name).to(device) for name in CONTEXT_STREAMS}
        for name, x in given.items():
            if x is None and bool(flags[name].any()):
                raise UsageError(f"presence marks {name} present but no {name} input was given")

        _check_shape("clip_f", clip_f, (batch, seq.clip_len, cfg.clip_dim))
        _check_shape("sync_f", sync_f, (batch, seq.sync_len, cfg.sync_dim))
        _check_shape("text_f", text_f, (batch, None, cfg.text_dim))
        _check_shape("lt_ids", lt_ids, (batch, seq.latent_len))

        dtype = self.null_video.dtype
        clip_f, sync_f, text_f = (
            None if x is None else x.to(device, dtype) for x in (clip_f, sync_f, text_f)
        )
        context, key_mask, pooled = {}, {}, {}
        if clip_f is not None:
            tokens = self.clip_in(_zero_absent(clip_f, flags["video"]))
            context["video"], pooled["video"] = tokens, self.video_cond(tokens.mean(dim=1))
        if lt_ids is not None:
            ids = torch.where(flags["lt"][:, None], lt_ids.to(device), 0)
            tokens = self.lt_in(self.lt_encoder(ids))
            context["lt"], pooled["lt"] = tokens, self.lt_cond(tokens.mean(dim=1))
        if text_f is not None:
            tokens = self.text_in(_zero_absent(text_f, flags["text"]))
            context["text"], pooled["text"] = tokens, self.text_cond(tokens.mean(dim=1))
        for name, tokens in context.items():
            key_mask[name] = flags[name][:, None].expand(batch, tokens.shape[1])

        vectors = []
        for name in CONTEXT_STREAMS:
            null = getattr(self, f"null_{name}").expand(batch, -1)
            vectors.append(torch.where(flags[name][:, None], pooled[name], null) if name in pooled else null)
        global_c = self.global_mlp(torch.stack(vectors).mean(dim=0))

        null_sync = self.null_sync.expand(batch, seq.sync_len, -1)
        raw_sync = (
            null_sync if sync_f is None else torch.where(flags["video"][:, None, None], sync_f, null_sync)
        )
        raw_sync = raw_sync.unflatten(1, (seq.sync_segments, -1)) + self.sync_pos
        sync = self.sync_in(raw_sync.flatten(1, 2))
        sync_c = F.interpolate(sync.transpose(1, 2), size=seq.latent_len, mode="nearest-exact").transpose(
            1, 2
        )
        return PreprocessedConditions.with_masks(global_c, sync_c, context, key_mask)

    def empty_conditions(self, batch: int) -> PreprocessedConditions:
        """Every modality absent (the unconditional branch of classifier-free guidance)."""
        return self.preprocess_conditions(batch_size=batch)

    # --- flow (once per step) -------------------------------------------------------------------

    def embed_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """Noisy latents (B, N, latent_dim) -> the audio stream's input tokens (B, N, D), weights' dtype.

        It depends on the latents alone, so the two branches of classifier-free guidance share one
        embedding (`predict_flow(..., embedded=...)`): the input projection, a kernel-7 ConvMLP, is a
        quarter to a third of a tiny network's FLOPs."""
        _check_shape("latent", latent, (None, self.sequence.latent_len, self.config.latent_dim))
        return self.audio_in(latent.to(self.null_video.dtype))

    def predict_flow(
        self,
        latent: torch.Tensor,
        t: torch.Tensor,
        conditions: PreprocessedConditions,
        *,
        embedded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity (B, N, latent_dim), in the weights' dtype, for noisy latents (B, N, latent_dim) at flow
        times t (B,) or scalar in [0, 1]. embedded: `embed_latent(latent)` when the caller already has it
        (the same values, computed once for both guidance branches). No device read: safe inside a CUDA graph."""
        cfg, seq = self.config, self.sequence
        _check_shape("latent", latent, (conditions.batch, seq.latent_len, cfg.latent_dim))
        batch = latent.shape[0]
        # float32 whatever the weights: a bf16 t (8-bit mantissa) would shift the 1000 t timestep features by radians
        t = torch.as_tensor(t, device=latent.device, dtype=torch.float32).expand(batch)
        key_mask = conditions.attn_mask

        x = self.embed_latent(latent) if embedded is None else embedded
        _check_shape("embedded latent", x, (batch, seq.latent_len, cfg.hidden_dim))
        global_c = (self.t_embed(t) + conditions.global_c)[:, None]
        audio_c = global_c + conditions.sync_c
        context = dict(conditions.context)
        ropes = {"audio": self.rope_audio, "video": self.rope_video, "lt": self.rope_audio, "text": None}
        for block in self.joint:
            x, context = block(x, context, audio_c, global_c, ropes, key_mask)
        for block in self.single:
            x = block(x, audio_c, self.rope_audio)
        return self.final(x, audio_c)

    def forward(
        self,
        latent: torch.Tensor,
        t: torch.Tensor,
        *,
        clip_f: torch.Tensor | None = None,
        sync_f: torch.Tensor | None = None,
        text_f: torch.Tensor | None = None,
        lt_ids: torch.Tensor | None = None,
        presence: ModalityPresence | None = None,
    ) -> torch.Tensor:
        """preprocess_conditions + predict_flow in one call (training)."""
        conditions = self.preprocess_conditions(
            clip_f=clip_f,
            sync_f=sync_f,
            text_f=text_f,
            lt_ids=lt_ids,
            presence=presence,
            batch_size=latent.shape[0],
        )
        return self.predict_flow(latent, t, conditions)


def _batch_size(
    given: Mapping[str, torch.Tensor | None], presence: ModalityPresence | None, batch_size: int | None
) -> int:
    sizes = {name: x.shape[0] for name, x in given.items() if x is not None}
    if presence is not None:
        sizes["presence"] = presence.batch
    if batch_size is not None:
        sizes["batch_size"] = batch_size
    if not sizes:
        raise UsageError("no condition given: pass batch_size for a fully unconditional batch")
    if len(set(sizes.values())) != 1:
        raise UsageError(f"condition inputs disagree on the batch size: {sizes}")
    return next(iter(sizes.values()))


def _check_shape(name: str, x: torch.Tensor | None, expected: tuple[int | None, ...]) -> None:
    """UsageError unless x is None or matches `expected` (None = any size >= 1 on that axis)."""
    if x is None:
        return
    ok = x.ndim == len(expected) and all(
        (e is None and s >= 1) or s == e for s, e in zip(x.shape, expected, strict=True)
    )
    if not ok:
        want = tuple("L" if e is None else e for e in expected)
        raise UsageError(f"{name} has shape {tuple(x.shape)}, expected {want} for this model and duration")


def _zero_absent(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Zero the features of absent samples (whatever they hold, NaN included) so they cannot leak."""
    return torch.where(present[:, None, None], x, 0.0)


def load_network_weights(
    model: AgomniMMDiT, state_dict: Mapping[str, torch.Tensor], source: str, *, assign: bool = False
) -> None:
    """Strictly load weights into `model` (`agomni.weights.load_strict`; `assign` for a network built on
    the meta device); the WeightsError for a missing, unexpected or wrong-shaped tensor names `source`
    (a path or description) and the model size, since a checkpoint of another size is the usual cause."""
    load_strict(model, state_dict, where=f"{source} (model size {model.config.name})", assign=assign)


__all__ = [
    "AgomniMMDiT",
    "ModalityPresence",
    "PreprocessedConditions",
    "draw_presence",
    "load_network_weights",
]

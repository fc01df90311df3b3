"""Cross-attention capture for diffusers UNets through the attention-processor API.

:class:`CrossAttentionRecorder` installs, for the cross-attention layers asked
for, a processor that computes ``softmax(QK^T / sqrt(d))`` for the chosen
token groups and adds it to a running sum, then hands the layer back to its
original processor for the output, which is unchanged. Nothing else is
stored, so memory does not grow with steps or layers not asked for. The
original processors come back on exit, also when the pipeline raises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

BLOCKS = ("down", "mid", "up")


@dataclass
class AttentionMaps:
    """Recorded maps: per layer (B, K, h, w) — (B, heads, K, h, w) with ``heads="all"`` — averaged over the
    recorded steps; ``per_step`` holds the layer mean at each recorded step when a trajectory was asked for.

    Args:
        per_layer: layer name → maps, K being the number of token groups (words).
        steps: the UNet call indices that were recorded.
        per_step: step → mean of the layers' maps at that step (empty unless ``trajectory=True``).
        joint: on ConceptAttention's maps (``concepts=``), the same words' joint-attention maps recorded in the
            same passes (what ``concepts=None`` records); None otherwise.

    >>> import torch
    >>> maps = AttentionMaps({"up.0": torch.ones(1, 2, 4, 4), "up.1": torch.ones(1, 2, 8, 8)}, steps=[0])
    >>> maps.resolutions
    {'up.0': (4, 4), 'up.1': (8, 8)}
    >>> maps.mean().shape, maps.mean((32, 32)).shape
    (torch.Size([1, 2, 8, 8]), torch.Size([1, 2, 32, 32]))
    """

    per_layer: dict[str, torch.Tensor]
    steps: list[int]
    per_step: dict[int, torch.Tensor] = field(default_factory=dict)
    joint: AttentionMaps | None = None

    @property
    def all_heads(self) -> bool:
        """Whether every head's map was kept (recorded with ``heads="all"``: (B, heads, K, h, w) per layer)."""
        return any(m.ndim == 5 for m in self.per_layer.values())

    @property
    def resolutions(self) -> dict[str, tuple[int, int]]:
        return {name: tuple(m.shape[-2:]) for name, m in self.per_layer.items()}

    def mean(self, size: tuple[int, int] | None = None, aggregation: str = "layers") -> torch.Tensor:
        """One map per word (B, K, H, W), at ``size`` (default: the largest layer's, the latent size for SD).

        ``aggregation="layers"`` (foundseg's): each layer's heads averaged, the layers upsampled bilinearly
        and averaged with equal weight, the mid block included. ``"daam"`` (DAAM 0.2.0's
        ``compute_global_heat_map``): every (layer, head) map upsampled bicubically and clamped at zero, then
        averaged over all pairs — so a layer with more heads weighs more —, the mid block left out, summed over
        the recorded steps. It needs every head (record with ``heads="all"``).

        >>> maps = AttentionMaps({"up.0": torch.ones(1, 2, 1, 4, 4), "mid": torch.zeros(1, 1, 1, 2, 2)}, [0, 1])
        >>> float(maps.mean(aggregation="daam").max())  # the mid block left out; two steps summed
        2.0
        """
        if not self.per_layer:
            raise ValueError("no cross-attention layer was recorded; check the layers and steps asked for")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        size = size or max(self.resolutions.values())
        if aggregation == "layers":
            maps = [m.mean(1) if self.all_heads else m for m in self.per_layer.values()]
            return torch.stack([_resize(m, size) for m in maps]).mean(0)
        if not self.all_heads:
            raise ValueError("aggregation='daam' needs every head's map: record with heads='all'")
        pairs = [head for name, m in self.per_layer.items() if not name.startswith("mid") for head in m.unbind(1)]
        if not pairs:
            raise ValueError("aggregation='daam' leaves the mid block out, and no other layer was recorded")
        return torch.stack([_resize(m, size, "bicubic").clamp(min=0) for m in pairs]).mean(0) * len(self.steps)


AGGREGATIONS = ("layers", "daam")
"""How :meth:`AttentionMaps.mean` combines layers and heads into one map per word."""


def _resize(maps: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    return F.interpolate(flat, size=tuple(size), mode=mode, align_corners=False).reshape(*lead, *size)


def cross_attention_layers(unet) -> list[str]:
    """Names of the cross-attention modules (``attn2``) of a UNet, in module order (down, up, mid).

    Args:
        unet: a ``diffusers.UNet2DConditionModel``.

    >>> from foundseg.models import load_sd
    >>> names = cross_attention_layers(load_sd("shapes-sd").unet)
    >>> len(names), names[0]
    (10, 'down_blocks.0.attentions.0.transformer_blocks.0.attn2')
    """
    processors = getattr(unet, "attn_processors", None)
    if processors is None:
        raise ValueError(f"unet ({type(unet).__name__}) has no attention processors; expected a UNet2DConditionModel")
    return [name[: -len(".processor")] for name in processors if name.endswith("attn2.processor")]


def select_layers(unet, layers=None) -> list[str]:
    """Cross-attention layer names chosen by ``layers``: None (all), block kinds ``down``/``mid``/``up``,
    or name prefixes such as ``up_blocks.1``; a list mixes them.

    Args:
        unet: a ``diffusers.UNet2DConditionModel``.
        layers: the selection; an entry that matches no layer raises ``ValueError``.

    Returns the names in module order (as :func:`cross_attention_layers`), each once.

    >>> from foundseg.models import load_sd
    >>> unet = load_sd("shapes-sd").unet
    >>> len(select_layers(unet)), len(select_layers(unet, "up"))
    (10, 6)
    >>> select_layers(unet, ["mid", "down_blocks.1"])
    ['down_blocks.1.attentions.0.transformer_blocks.0.attn2', 'mid_block.attentions.0.transformer_blocks.0.attn2']
    """
    names = cross_attention_layers(unet)
    if not names:
        raise ValueError(f"unet ({type(unet).__name__}) has no cross-attention layers to record")
    if layers is None:
        return names
    wanted = [layers] if isinstance(layers, str) else list(layers)
    chosen = []
    for w in wanted:
        if w in BLOCKS:
            hit = [n for n in names if n.startswith("mid_block" if w == "mid" else f"{w}_blocks")]
        else:
            hit = [n for n in names if n == w or n.startswith(str(w) + ".")]
        if not hit:
            raise ValueError(f"layers entry {w!r} matches no cross-attention layer; use {BLOCKS}, "
                             f"a resolution via resolutions=, or a prefix of one of {names}")
        chosen += [n for n in hit if n not in chosen]
    return [n for n in names if n in chosen]


def resolve_steps(steps, total_steps: int | None = None) -> set[int] | None:
    """The model-call indices to record: None for ``"all"``, else a set, negative indices counted from
    ``total_steps``; anything out of range raises ``ValueError``.

    >>> resolve_steps("all") is None, resolve_steps([0, -1], total_steps=25)
    (True, {0, 24})
    """
    if steps == "all":
        return None
    items = [steps] if isinstance(steps, int) else list(steps)
    if not items or not all(isinstance(s, int) for s in items):
        raise ValueError(f"steps must be 'all', an int or a list of ints, got {steps!r}")
    if any(s < 0 for s in items):
        if total_steps is None:
            raise ValueError("negative steps count from the end: total_steps is needed")
        items = [s % total_steps if -total_steps <= s else s for s in items]
    if total_steps is not None and any(not 0 <= s < total_steps for s in items):
        raise ValueError(f"steps {items} out of range for {total_steps} steps")
    return set(items)


class _Capture:
    """Attention processor that records probabilities of the chosen tokens, then defers to ``inner``."""

    def __init__(self, recorder: "CrossAttentionRecorder", name: str, inner):
        self.recorder, self.name, self.inner = recorder, name, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if encoder_hidden_states is not None and self.recorder.recording:
            self.recorder.add(self.name, attn, hidden_states, encoder_hidden_states)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


class ProcessorRecorder:
    """Base of the recorders: for a ``with`` block, ``self.capture(self, layer, original)`` becomes the
    attention processor of each layer in ``self.layers`` of ``self.model`` and ``self._pre_forward`` its
    forward pre-hook (counting calls as steps); the original processors come back on exit, also when the
    block raises."""

    capture = None

    def _setup(self, model, token_groups, heads, layers, steps, total_steps):
        """Check and keep the arguments every recorder takes (see :class:`CrossAttentionRecorder`)."""
        if not token_groups or not all(token_groups):
            raise ValueError(f"token_groups must be a non-empty list of non-empty position lists, got {token_groups!r}")
        if not (heads in ("mean", "all") or (isinstance(heads, (list, tuple)) and heads)):
            raise ValueError(f"heads must be 'mean', 'all' or a list of head indices, got {heads!r}")
        self.model, self.groups, self.heads, self.layers = model, [list(g) for g in token_groups], heads, layers
        self.steps = resolve_steps(steps, total_steps)

    @property
    def recording(self) -> bool:
        return self.steps is None or self.step in self.steps

    def reset(self) -> None:
        """Forget what was recorded and count steps from the start again: the next call is step 0."""
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.per_step: dict[int, dict[str, torch.Tensor]] = {}
        self.step, self.recorded_steps = -1, []

    def __enter__(self):
        modules = {name: self.model.get_submodule(name) for name in self.layers}
        self.original = {name: module.processor for name, module in modules.items()}
        captures = {name: self.capture(self, name, self.original[name]) for name in modules}
        for name, module in modules.items():  # only the recorded layers: the others keep their processors
            module.set_processor(captures[name])
        self.hook = self.model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.hook.remove()
        for name, processor in self.original.items():
            self.model.get_submodule(name).set_processor(processor)
        return False


class CrossAttentionRecorder(ProcessorRecorder):
    """Context manager that records cross-attention maps of token groups on a UNet.

    Args:
        unet: a ``diffusers.UNet2DConditionModel``.
        token_groups: positions per word (see :func:`foundseg.diffusion.token_indices`); a group's maps are
            the mean over its tokens.
        layers: see :func:`select_layers`; ``resolutions`` keeps only layers whose map has that many rows.
        heads: ``"mean"`` (average over heads), ``"all"`` (keep each head) or a list of head indices (averaged).
        steps: UNet call indices to record (negative ones count from ``total_steps``), or ``"all"``.
        total_steps: number of UNet calls the run will make (needed for negative steps).
        conditional_half: keep only the second half of the batch (the text-conditioned half under
            classifier-free guidance, as diffusers orders it).
        trajectory: also keep the layer mean at every recorded step.

    The UNet's output is unchanged; :meth:`result` gives the maps as :class:`AttentionMaps`.

    >>> import torch
    >>> from foundseg.models import load_sd
    >>> from foundseg.diffusion import token_indices
    >>> pipe = load_sd("shapes-sd")
    >>> groups = token_indices(pipe.tokenizer, "a red circle", ["red", "circle"])
    >>> text = pipe.encode_prompt("a red circle", "cpu", 1, False)[0]
    >>> with torch.no_grad(), CrossAttentionRecorder(pipe.unet, groups, layers="up") as rec:
    ...     _ = pipe.unet(torch.zeros(1, 4, 16, 16), 10, encoder_hidden_states=text)
    >>> maps = rec.result()
    >>> len(maps.per_layer), maps.steps, maps.mean().shape
    (6, [0], torch.Size([1, 2, 16, 16]))
    """

    capture = _Capture

    def __init__(self, unet, token_groups, layers=None, resolutions=None, heads="mean", steps="all",
                 total_steps: int | None = None, conditional_half: bool = False, trajectory: bool = False):
        self._setup(unet, token_groups, heads, select_layers(unet, layers), steps, total_steps)
        self.resolutions = None if resolutions is None else set([resolutions] if isinstance(resolutions, int) else resolutions)
        self.conditional_half, self.trajectory = conditional_half, trajectory
        self.latent_hw = None
        self.reset()

    def _pre_forward(self, module, args, kwargs):
        self.step += 1
        sample = args[0] if args else kwargs["sample"]
        self.latent_hw = tuple(sample.shape[-2:])
        if self.recording:
            self.recorded_steps.append(self.step)

    @torch.no_grad()
    def add(self, name, attn, hidden_states, context):
        """Add this call's probabilities of the token groups to the running sum of layer ``name``."""
        if hidden_states.ndim == 4:
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        if self.conditional_half:
            hidden_states, context = hidden_states.chunk(2)[1], context.chunk(2)[1]
        n = hidden_states.shape[1]
        lh, lw = self.latent_hw
        f = math.sqrt(lh * lw / n)
        hw = (round(lh / f), round(lw / f))
        if self.resolutions is not None and hw[0] not in self.resolutions:
            return
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(context))
        probs = attn.get_attention_scores(query, key, None)  # (B * heads, N, T)
        b = hidden_states.shape[0]
        probs = probs.reshape(b, attn.heads, n, -1)
        if isinstance(self.heads, (list, tuple)):
            if not all(0 <= h < attn.heads for h in self.heads):
                raise ValueError(f"heads {list(self.heads)} out of range: layer {name} has {attn.heads} heads")
            probs = probs[:, list(self.heads)].mean(1)
        elif self.heads == "mean":
            probs = probs.mean(1)
        groups = torch.stack([probs[..., g].mean(-1) for g in self.groups], -2)  # (B[, H], K, N)
        maps = groups.reshape(*groups.shape[:-1], *hw).float()
        self.sums[name] = self.sums.get(name, 0) + maps
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.trajectory:
            self.per_step.setdefault(self.step, {})[name] = maps

    def result(self) -> AttentionMaps:
        """The recorded maps, averaged over recorded steps per layer, on the CPU (they are small)."""
        per_layer = {n: (self.sums[n] / self.counts[n]).float().cpu() for n in self.layers if n in self.sums}
        per_step = {}
        for step, layers in self.per_step.items():
            size = max(m.shape[-2:] for m in layers.values())
            per_step[step] = torch.stack([_resize(m, size) for m in layers.values()]).mean(0).float().cpu()
        return AttentionMaps(per_layer, sorted(set(self.recorded_steps)), per_step)

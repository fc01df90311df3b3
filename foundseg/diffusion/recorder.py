"""What every attention recorder shares: the maps it returns, the choice of layers and steps, the capture
processor installed for a ``with`` block, the running sums and the result.

A recorder (:class:`~foundseg.diffusion.attention.CrossAttentionRecorder` for UNets,
:class:`~foundseg.diffusion.joint_attention.JointAttentionRecorder` for SD3 and FLUX transformers,
:class:`~foundseg.diffusion.concept_attention.ConceptAttention`) defines only its layers, how a step's latent
grid is read (``_pre_forward``) and what a layer call adds (``observe``); :class:`Recorder` installs a
:class:`CaptureProcessor` on each chosen layer, counts the model's calls as steps, keeps one running sum per
layer (memory does not grow with the steps) and gives :class:`AttentionMaps`. The model's own processors come
back on exit, also when the model raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..maps import resize_maps

AGGREGATIONS = ("layers", "daam")
"""How :meth:`AttentionMaps.mean` combines layers and heads into one map per word."""


@dataclass
class AttentionMaps:
    """Recorded maps: per layer (B, K, h, w) — (B, heads, K, h, w) with ``heads="all"`` — averaged over the
    recorded steps; ``per_step`` holds the layer mean at each recorded step when a trajectory was asked for.

    Args:
        per_layer: layer name → maps, K being the number of token groups (words).
        steps: the model call indices that were recorded.
        per_step: step → mean of the layers' maps at that step (empty unless ``trajectory=True``).
        joint: on ConceptAttention's maps (``concepts=``), the same words' joint-attention maps recorded in the
            same passes (what ``concepts=None`` records); None otherwise.

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
            return torch.stack([resize_maps(m, size) for m in maps]).mean(0)
        if not self.all_heads:
            raise ValueError("aggregation='daam' needs every head's map: record with heads='all'")
        pairs = [head for name, m in self.per_layer.items() if not name.startswith("mid") for head in m.unbind(1)]
        if not pairs:
            raise ValueError("aggregation='daam' leaves the mid block out, and no other layer was recorded")
        return torch.stack([resize_maps(m, size, "bicubic").clamp(min=0) for m in pairs]).mean(0) * len(self.steps)


def select_by_prefix(names: list[str], layers, kinds: dict[str, str], what: str) -> list[str]:
    """The entries of ``names`` chosen by ``layers``: None (all), a kind of ``kinds`` (kind → name prefix) or a
    name prefix; a list mixes them. Returned in the order of ``names``, each once; an entry that matches nothing
    raises ``ValueError`` naming ``what`` the layers are.

    >>> names = ["down_blocks.0.attn2", "mid_block.attn2", "up_blocks.1.attn2"]
    >>> select_by_prefix(names, ["up", "mid"], {"mid": "mid_block", "up": "up_blocks"}, "cross-attention")
    ['mid_block.attn2', 'up_blocks.1.attn2']
    """
    if layers is None:
        return list(names)
    chosen = []
    for w in [layers] if isinstance(layers, str) else list(layers):
        prefix = kinds.get(w, f"{w}.")
        hit = [n for n in names if n == w or n.startswith(prefix)]
        if not hit:
            raise ValueError(f"layers entry {w!r} matches no {what} layer; use {tuple(kinds)} or a prefix of one "
                             f"of {names[:3]} …")
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


def check_heads(heads, n_heads: int, layer: str) -> None:
    """Refuse a list of head indices that layer ``layer`` (``n_heads`` heads) does not have.

    >>> check_heads([0, 3], 4, "up.0")
    >>> check_heads([4], 4, "up.0")
    Traceback (most recent call last):
    ValueError: heads [4] out of range: layer up.0 has 4 heads
    """
    if isinstance(heads, (list, tuple)) and not all(0 <= h < n_heads for h in heads):
        raise ValueError(f"heads {list(heads)} out of range: layer {layer} has {n_heads} heads")


class CaptureProcessor:
    """The attention processor a recorder installs on a layer: it shows the layer's inputs to the recorder
    (``observe``), then hands every argument as it came to the layer's own ``inner`` processor, whose output
    is unchanged. FLUX's layers give the rotary position embedding as the fifth argument (or by name)."""

    def __init__(self, recorder: "Recorder", name: str, inner):
        self.recorder, self.name, self.inner = recorder, name, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        rotary = args[0] if args else kwargs.get("image_rotary_emb")
        self.recorder.observe(self.name, attn, hidden_states, encoder_hidden_states, rotary)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)


class Recorder:
    """Base of the recorders: for a ``with`` block a :class:`CaptureProcessor` becomes the attention processor
    of each layer in ``self.layers`` of ``self.model`` and ``self._pre_forward`` its forward pre-hook (counting
    calls as steps and reading the step's latent grid into ``self.grid``); the original processors come back
    on exit, also when the block raises. A subclass sets up with :meth:`_setup` and defines ``_pre_forward``
    and ``observe``, which hands a layer call's maps (B[, heads], K, N) to :meth:`accumulate`."""

    def _setup(self, model, token_groups, heads, layers, steps, total_steps, conditional_half, trajectory):
        """Check and keep the arguments every recorder takes (see
        :class:`~foundseg.diffusion.attention.CrossAttentionRecorder`)."""
        if not token_groups or not all(token_groups):
            raise ValueError(f"token_groups must be a non-empty list of non-empty position lists, got {token_groups!r}")
        if not (heads in ("mean", "all") or (isinstance(heads, (list, tuple)) and heads)):
            raise ValueError(f"heads must be 'mean', 'all' or a list of head indices, got {heads!r}")
        self.model, self.groups, self.heads, self.layers = model, [list(g) for g in token_groups], heads, layers
        self.steps = resolve_steps(steps, total_steps)
        self.conditional_half, self.trajectory = conditional_half, trajectory
        self.grid = None
        self.reset()

    @property
    def recording(self) -> bool:
        return self.steps is None or self.step in self.steps

    def reset(self) -> None:
        """Forget what was recorded and count steps from the start again: the next call is step 0."""
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.per_step: dict[int, dict[str, torch.Tensor]] = {}
        self.step, self.recorded_steps = -1, []

    def _count_step(self) -> None:
        self.step += 1
        if self.recording:
            self.recorded_steps.append(self.step)

    def accumulate(self, name: str, maps: torch.Tensor, grid=None) -> None:
        """Add layer ``name``'s maps (B[, H], K, N) of this call, on ``grid`` (default: the step's latent grid),
        to its running sum (and to the step's trajectory when one is kept)."""
        maps = maps.reshape(*maps.shape[:-1], *(grid or self.grid)).float()
        self.sums[name] = self.sums.get(name, 0) + maps
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.trajectory:
            self.per_step.setdefault(self.step, {})[name] = maps

    def result(self) -> AttentionMaps:
        """The recorded maps, averaged over the recorded steps per layer, on the CPU (they are small); a step's
        trajectory map is the mean of its layers, each resized to the largest layer's grid."""
        per_layer = {n: (self.sums[n] / self.counts[n]).float().cpu() for n in self.layers if n in self.sums}
        per_step = {}
        for step, layers in self.per_step.items():
            size = max(m.shape[-2:] for m in layers.values())
            per_step[step] = torch.stack([resize_maps(m, size) for m in layers.values()]).mean(0).float().cpu()
        return AttentionMaps(per_layer, sorted(set(self.recorded_steps)), per_step)

    def __enter__(self):
        modules = {name: self.model.get_submodule(name) for name in self.layers}
        self.original = {name: module.processor for name, module in modules.items()}
        captures = {name: CaptureProcessor(self, name, self.original[name]) for name in modules}
        for name, module in modules.items():  # only the recorded layers: the others keep their processors
            module.set_processor(captures[name])
        self.hook = self.model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.hook.remove()
        for name, processor in self.original.items():
            self.model.get_submodule(name).set_processor(processor)
        return False

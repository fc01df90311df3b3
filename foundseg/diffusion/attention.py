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

import torch

from .recorder import Recorder, check_heads, select_by_prefix

BLOCKS = {"down": "down_blocks", "mid": "mid_block", "up": "up_blocks"}
"""Block kinds a layer selection may name, and the prefix of their layers' names."""


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
    return select_by_prefix(names, layers, BLOCKS, "cross-attention")


class CrossAttentionRecorder(Recorder):
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

    The UNet's output is unchanged; :meth:`result` gives the maps as
    :class:`~foundseg.diffusion.recorder.AttentionMaps`.

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

    def __init__(self, unet, token_groups, layers=None, resolutions=None, heads="mean", steps="all",
                 total_steps: int | None = None, conditional_half: bool = False, trajectory: bool = False):
        self._setup(unet, token_groups, heads, select_layers(unet, layers), steps, total_steps, conditional_half,
                    trajectory)
        self.resolutions = None if resolutions is None else set([resolutions] if isinstance(resolutions, int) else resolutions)

    def _pre_forward(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.grid = tuple(sample.shape[-2:])  # the latent grid; each layer's map is a whole fraction of it
        self._count_step()

    def observe(self, name, attn, hidden_states, encoder_hidden_states, image_rotary_emb=None):
        """What the capture processor does before layer ``name`` attends: :meth:`add` at recorded steps of a
        cross-attention call."""
        if encoder_hidden_states is not None and self.recording:
            self.add(name, attn, hidden_states, encoder_hidden_states)

    @torch.no_grad()
    def add(self, name, attn, hidden_states, context):
        """Add this call's probabilities of the token groups to the running sum of layer ``name``."""
        if hidden_states.ndim == 4:
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        if self.conditional_half:
            hidden_states, context = hidden_states.chunk(2)[1], context.chunk(2)[1]
        n = hidden_states.shape[1]
        lh, lw = self.grid
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
        check_heads(self.heads, attn.heads, name)
        if isinstance(self.heads, (list, tuple)):
            probs = probs[:, list(self.heads)].mean(1)
        elif self.heads == "mean":
            probs = probs.mean(1)
        self.accumulate(name, torch.stack([probs[..., g].mean(-1) for g in self.groups], -2), hw)  # (B[, H], K, N)

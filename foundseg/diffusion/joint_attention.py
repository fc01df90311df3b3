"""Image→text attention of multi-modal diffusion transformers (Stable Diffusion 3, FLUX.1) through the
attention-processor API.

In an MMDiT, text and image tokens share one joint attention: there is no cross-attention layer, but each
image token's softmax over *all* keys gives a probability to every text token. :class:`JointAttentionRecorder`
installs, on the layers asked for, a processor that computes those image→text probabilities for the chosen
token groups (one head at a time, so memory stays at one head's scores), adds them to a running sum, and hands
the layer back to its original processor, whose output is unchanged. The originals come back on exit, also when
the transformer raises. The maps come back as :class:`~foundseg.diffusion.recorder.AttentionMaps`, so
everything that reads cross-attention maps reads these.

Layers: SD3's ``transformer_blocks.i.attn`` (image tokens first, then text); FLUX's double-stream
``transformer_blocks.i.attn`` and single-stream ``single_transformer_blocks.i.attn`` (text first, rotary
position embeddings on queries and keys).
"""
from __future__ import annotations

import torch

from .recorder import Recorder, check_heads, select_by_prefix

KINDS = {"double": "transformer_blocks.", "single": "single_transformer_blocks."}
"""Block kinds a layer selection may name: FLUX's double-stream (and SD3's joint) blocks, FLUX's single-stream."""


def joint_attention_layers(transformer) -> list[str]:
    """Names of the joint-attention modules of an SD3 or FLUX transformer, in module order.

    >>> import torch
    >>> from foundseg.testing import random_transformer
    >>> with torch.device("meta"):
    ...     names = joint_attention_layers(random_transformer("flux-schnell"))
    >>> len(names), names[0], names[-1]
    (57, 'transformer_blocks.0.attn', 'single_transformer_blocks.37.attn')
    """
    processors = getattr(transformer, "attn_processors", None)
    if processors is None:
        raise ValueError(f"transformer ({type(transformer).__name__}) has no attention processors; expected "
                         "an SD3Transformer2DModel or a FluxTransformer2DModel")
    names = [name[: -len(".processor")] for name in processors]
    modules = dict(transformer.named_modules())
    return [n for n in names if n.endswith(".attn") and n.startswith(tuple(KINDS.values()))
            and (n.startswith(KINDS["single"]) or modules[n].add_k_proj is not None)]


def select_joint_layers(transformer, layers=None) -> list[str]:
    """Joint-attention layer names chosen by ``layers``: None (all), ``"double"`` / ``"single"``, or name
    prefixes such as ``transformer_blocks.3``; a list mixes them. An entry that matches nothing raises.

    >>> import torch
    >>> from foundseg.testing import random_transformer
    >>> with torch.device("meta"):
    ...     t = random_transformer("flux-schnell")
    >>> len(select_joint_layers(t, "double")), select_joint_layers(t, ["single_transformer_blocks.1"])
    (19, ['single_transformer_blocks.1.attn'])
    """
    names = joint_attention_layers(transformer)
    if not names:
        raise ValueError(f"transformer ({type(transformer).__name__}) has no joint-attention layers to record")
    return select_by_prefix(names, layers, KINDS, "joint-attention")


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(B, S, heads * d) → (B, heads, S, d)."""
    return x.unflatten(-1, (-1, head_dim)).transpose(1, 2)


def image_queries_and_keys(attn, hidden_states, encoder_hidden_states=None, image_rotary_emb=None,
                           text_length: int | None = None):
    """The image tokens' queries (B, heads, N, d), every key (B, heads, S, d) and the text keys' slice, exactly
    as the layer's own processor forms them: SD3 puts image tokens first; FLUX puts text first and rotates
    queries and keys by their positions. A single-stream FLUX layer gets text and image in ``hidden_states``;
    ``text_length`` says where the text ends."""
    head_dim = attn.to_q.out_features // attn.heads
    single = encoder_hidden_states is None
    if single and text_length is None:
        raise ValueError("a single-stream layer needs text_length")
    query, key = _heads(attn.to_q(hidden_states), head_dim), _heads(attn.to_k(hidden_states), head_dim)
    if attn.norm_q is not None:
        query, key = attn.norm_q(query), attn.norm_k(key)
    if single:
        text_query, text_key = query[:, :, :text_length], key[:, :, :text_length]
        query, key = query[:, :, text_length:], key[:, :, text_length:]
    else:
        text_query = _heads(attn.add_q_proj(encoder_hidden_states), head_dim)
        text_key = _heads(attn.add_k_proj(encoder_hidden_states), head_dim)
        if attn.norm_added_q is not None:
            text_query, text_key = attn.norm_added_q(text_query), attn.norm_added_k(text_key)
    t = text_key.shape[2]
    if image_rotary_emb is None:  # SD3: [image, text]
        return query, torch.cat([key, text_key], 2), slice(key.shape[2], key.shape[2] + t)
    from diffusers.models.embeddings import apply_rotary_emb

    query = apply_rotary_emb(torch.cat([text_query, query], 2), image_rotary_emb, sequence_dim=2)
    key = apply_rotary_emb(torch.cat([text_key, key], 2), image_rotary_emb, sequence_dim=2)
    return query[:, :, t:], key, slice(0, t)  # FLUX: [text, image]


class JointAttentionRecorder(Recorder):
    """Context manager that records image→text attention maps of token groups on an SD3 or FLUX transformer.

    Args:
        transformer: a ``diffusers.SD3Transformer2DModel`` or ``FluxTransformer2DModel``.
        token_groups: positions per word in the text sequence the transformer is given (see
            :func:`foundseg.diffusion.token_indices`); a group's map is the mean over its tokens.
        layers: see :func:`select_joint_layers`.
        heads: ``"mean"``, ``"all"`` (keep each head) or a list of head indices (averaged).
        steps: transformer call indices to record (negative ones count from ``total_steps``), or ``"all"``.
        total_steps: number of transformer calls the run will make (needed for negative steps).
        conditional_half: keep only the second half of the batch (the text-conditioned half under
            classifier-free guidance, as diffusers' SD3 pipeline orders it).
        trajectory: also keep the layer mean at every recorded step (``per_step`` of the result).

    Each map is the softmax of an image token's query against *all* keys (image and text), read at the
    group's text keys: the share of that image token's attention that goes to the word. The transformer's
    output is unchanged; :meth:`result` gives :class:`~foundseg.diffusion.recorder.AttentionMaps` on the
    latent patch grid.
    """

    def __init__(self, transformer, token_groups, layers=None, heads="mean", steps="all",
                 total_steps: int | None = None, conditional_half: bool = False, trajectory: bool = False):
        self._setup(transformer, token_groups, heads, select_joint_layers(transformer, layers), steps, total_steps,
                    conditional_half, trajectory)
        self.text_length = None

    def _pre_forward(self, module, args, kwargs):
        sample = args[0] if args else kwargs["hidden_states"]
        text = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        self.text_length = text.shape[1]
        if sample.ndim == 4:  # SD3: latents (B, C, H, W), cut into patches
            p = module.config.patch_size
            self.grid = (sample.shape[-2] // p, sample.shape[-1] // p)
        else:  # FLUX: packed tokens with their (0, row, column) ids
            ids = kwargs["img_ids"]
            ids = ids[0] if ids.ndim == 3 else ids
            self.grid = (int(ids[:, 1].max()) + 1, int(ids[:, 2].max()) + 1)
        self._count_step()

    def observe(self, name, attn, hidden_states, encoder_hidden_states, image_rotary_emb):
        """What the capture processor does before layer ``name`` attends: :meth:`add` at recorded steps."""
        if self.recording:
            self.add(name, attn, hidden_states, encoder_hidden_states, image_rotary_emb)

    @torch.no_grad()
    def add(self, name, attn, hidden_states, encoder_hidden_states, image_rotary_emb):
        """Add this call's image→text probabilities of the token groups to the running sum of layer ``name``."""
        query, key, text = image_queries_and_keys(attn, hidden_states, encoder_hidden_states, image_rotary_emb,
                                                  self.text_length)
        if self.conditional_half:
            query, key = query.chunk(2)[1], key.chunk(2)[1]
        if any(max(g) >= text.stop - text.start for g in self.groups):
            raise ValueError(f"token_groups {self.groups} reach past the {text.stop - text.start} text tokens")
        check_heads(self.heads, query.shape[1], name)
        heads = range(query.shape[1]) if not isinstance(self.heads, (list, tuple)) else self.heads
        scale = query.shape[-1] ** -0.5
        per_head = []
        for h in heads:  # one head's (B, N, S) scores at a time
            scores = query[:, h].float() @ key[:, h].float().transpose(1, 2) * scale
            probs = (scores[..., text] - scores.logsumexp(-1, keepdim=True)).exp()  # (B, N, T)
            per_head.append(torch.stack([probs[..., g].mean(-1) for g in self.groups], 1))  # (B, K, N)
        maps = torch.stack(per_head, 1) if self.heads == "all" else torch.stack(per_head).mean(0)
        self.accumulate(name, maps)

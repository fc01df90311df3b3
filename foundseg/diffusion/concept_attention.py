"""ConceptAttention (Helbling et al., 2025): saliency maps of concepts from the attention *outputs* of a
multi-modal diffusion transformer's double-stream blocks.

Concept tokens (one text-encoder embedding per concept, e.g. "circle", "background") run through every
double-stream block as a third residual stream, with the prompt stream's own weights (its adaptive norms,
query/key/value and output projections, feed-forward). Concepts attend to the image tokens and to each other;
neither the image nor the prompt attends to them, so the generated image is exactly what it is without them.
At each recorded layer the map of a concept is the softmax over concepts of the dot product between an image
token's attention output and the concept's (``space="output"``, the paper's choice, "much sharper"), or
between the image token's query and the concept's key (``space="cross"``, concept cross-attention). Outputs
are taken before the output projections, where both are mixtures of the same layer's values.

Only double-stream blocks carry the concept stream (SD3's joint blocks, FLUX's ``transformer_blocks``);
FLUX's text positions are all zero, so its rotary embedding leaves the concept tokens as they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .denoiser import text_condition
from .joint_attention import JointAttentionRecorder, _heads, image_queries_and_keys, select_joint_layers
from .tokens import token_indices

SPACES = ("output", "cross")


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, S, d) → (B, S, heads * d)."""
    return x.transpose(1, 2).flatten(2)


class ConceptAttention(JointAttentionRecorder):
    """Context manager that records ConceptAttention maps of concepts on an SD3 or FLUX transformer.

    Args:
        transformer: a ``diffusers.SD3Transformer2DModel`` or ``FluxTransformer2DModel``.
        concepts: (K, D) or (B, K, D) text-encoder embeddings, one per concept, in the space the transformer's
            ``context_embedder`` reads (the prompt's ``encoder_hidden_states`` space).
        layers: double-stream layers whose maps are recorded (see
            :func:`~foundseg.diffusion.joint_attention.select_joint_layers`; default all); the concept stream
            runs through every double-stream block either way.
        space: ``"output"`` (attention outputs) or ``"cross"`` (image queries against concept keys).
        steps, total_steps, conditional_half, trajectory: as in :class:`~foundseg.diffusion.JointAttentionRecorder`.

    :meth:`result` gives :class:`~foundseg.diffusion.recorder.AttentionMaps` with one map per concept, each
    image token's maps summing to one over the concepts.
    """

    def __init__(self, transformer, concepts: torch.Tensor, layers=None, space: str = "output", steps="all",
                 total_steps: int | None = None, conditional_half: bool = False, trajectory: bool = False):
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        if not isinstance(concepts, torch.Tensor) or concepts.ndim not in (2, 3) or concepts.shape[-2] < 1:
            raise ValueError("concepts must be a (K, D) or (B, K, D) tensor of text embeddings, K ≥ 1; got "
                             f"{getattr(concepts, 'shape', type(concepts).__name__)}")
        width = transformer.context_embedder.in_features
        if concepts.shape[-1] != width:
            raise ValueError(f"concepts have {concepts.shape[-1]} features; the transformer's context_embedder "
                             f"reads {width}")
        double = select_joint_layers(transformer, "double")
        recorded = select_joint_layers(transformer, "double" if layers is None else layers)
        if not set(recorded) <= set(double):
            raise ValueError(f"layers must be double-stream layers; {sorted(set(recorded) - set(double))[:3]} are "
                             "single-stream, which carry no concept stream")
        super().__init__(transformer, [[k] for k in range(concepts.shape[-2])], "double", "mean", steps,
                         total_steps, conditional_half, trajectory)
        self.concepts, self.space, self.recorded = concepts, space, recorded
        self.stream = self.normed = None

    def __enter__(self):
        super().__enter__()
        blocks = [self.model.get_submodule(name[: -len(".attn")]) for name in self.layers]
        self.block_hooks = [h for block in blocks for h in (
            block.register_forward_pre_hook(self._normalise, with_kwargs=True),
            block.register_forward_hook(self._feed_forward))]
        return self

    def __exit__(self, *exc):
        for h in self.block_hooks:
            h.remove()
        return super().__exit__(*exc)

    @torch.no_grad()
    def _pre_forward(self, module, args, kwargs):
        super()._pre_forward(module, args, kwargs)
        sample = args[0] if args else kwargs["hidden_states"]
        concepts = self.concepts.to(sample.device, module.context_embedder.weight.dtype)
        concepts = concepts.expand(sample.shape[0], -1, -1) if concepts.ndim == 2 else concepts
        self.stream = module.context_embedder(concepts)

    @torch.no_grad()
    def _normalise(self, block, args, kwargs):
        """Before a block: the concept stream through the prompt stream's adaptive norm (shift, scale, gates)."""
        temb = kwargs["temb"] if "temb" in kwargs else args[2]
        if block.norm1_context.__class__.__name__ == "AdaLayerNormContinuous":  # SD3's last block: no update after
            self.normed, self.mods = block.norm1_context(self.stream, temb), None
        else:
            self.normed, *self.mods = block.norm1_context(self.stream, emb=temb)

    @torch.no_grad()
    def observe(self, name, attn, hidden_states, encoder_hidden_states, image_rotary_emb):
        """The concept tokens' attention over image and concept tokens in layer ``name`` (kept for the block's
        update), and the layer's concept maps added to the running sum when recording."""
        query, key, text = image_queries_and_keys(attn, hidden_states, encoder_hidden_states, image_rotary_emb,
                                                  self.text_length)
        head_dim = query.shape[-1]
        image_value = _heads(attn.to_v(hidden_states), head_dim)
        text_value = _heads(attn.add_v_proj(encoder_hidden_states), head_dim)
        if text.start == 0:  # FLUX: [text, image]
            value, image = torch.cat([text_value, image_value], 2), slice(text.stop, None)
        else:  # SD3: [image, text]
            value, image = torch.cat([image_value, text_value], 2), slice(0, text.start)
        c_query, c_key = _heads(attn.add_q_proj(self.normed), head_dim), _heads(attn.add_k_proj(self.normed), head_dim)
        if attn.norm_added_q is not None:
            c_query, c_key = attn.norm_added_q(c_query), attn.norm_added_k(c_key)
        c_value = _heads(attn.add_v_proj(self.normed), head_dim)
        c_out = F.scaled_dot_product_attention(c_query, torch.cat([key[:, :, image], c_key], 2),
                                               torch.cat([value[:, :, image], c_value], 2))
        self.concept_output = (attn, _merge(c_out))
        if not (self.recording and name in self.recorded):
            return
        if self.space == "output":
            image_side, concept_side = _merge(F.scaled_dot_product_attention(query, key, value)), _merge(c_out)
        else:
            image_side, concept_side = _merge(query), _merge(c_key)
        if self.conditional_half:
            image_side, concept_side = image_side.chunk(2)[1], concept_side.chunk(2)[1]
        self.accumulate(name, (image_side.float() @ concept_side.float().transpose(1, 2)).softmax(-1).transpose(1, 2))

    @torch.no_grad()
    def _feed_forward(self, block, args, output):
        """After a block: the concept stream's residual updates, with the prompt stream's gates and weights."""
        if self.mods is None:
            return
        gate_msa, shift_mlp, scale_mlp, gate_mlp = self.mods
        attn, c_out = self.concept_output
        stream = self.stream + gate_msa.unsqueeze(1) * attn.to_add_out(c_out)
        normed = block.norm2_context(stream) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        self.stream = stream + gate_mlp.unsqueeze(1) * block.ff_context(normed)


@torch.no_grad()
def concept_embeddings(pipe, concepts) -> torch.Tensor:
    """(K, D) embeddings of ``concepts`` (words) for :class:`ConceptAttention` on an SD3 pipeline: each concept
    encoded alone by the pipeline's text encoders, the mean of its own tokens' states.

    >>> from foundseg.models import load_sd
    >>> concept_embeddings(load_sd("shapes-dit"), ["circle", "square"]).shape
    torch.Size([2, 192])
    """
    if isinstance(concepts, str) or not concepts:
        raise ValueError(f"concepts must be a non-empty list of words, got {concepts!r}")
    device = pipe.transformer.device
    rows = []
    for concept in concepts:
        states = text_condition(pipe, concept, device)["encoder_hidden_states"][0]
        rows.append(states[token_indices(pipe.tokenizer, concept, [concept])[0]].mean(0))
    return torch.stack(rows)

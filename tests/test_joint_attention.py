"""Joint-attention capture on diffusion transformers: the real architectures' layers, and maps checked against
the attention each layer actually computes."""
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from foundseg.diffusion.concept_attention import ConceptAttention
from foundseg.diffusion.joint_attention import JointAttentionRecorder, joint_attention_layers, select_joint_layers
from foundseg.testing import random_transformer

GROUPS = [[1], [2, 3]]


def small_sd3():
    return random_transformer("sd3-medium", num_layers=2, num_attention_heads=2, attention_head_dim=8,
                              joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8,
                              in_channels=4, out_channels=4, sample_size=8, pos_embed_max_size=16).eval()


def sd3_inputs():
    g = torch.Generator().manual_seed(0)
    return dict(hidden_states=torch.randn(2, 4, 8, 12, generator=g), encoder_hidden_states=torch.randn(2, 5, 16, generator=g),
                pooled_projections=torch.randn(2, 8, generator=g), timestep=torch.tensor([10, 10]))


def small_flux():
    return random_transformer("flux-schnell", num_layers=1, num_single_layers=2, num_attention_heads=2,
                              attention_head_dim=16, axes_dims_rope=(4, 6, 6), joint_attention_dim=16,
                              pooled_projection_dim=8, in_channels=8).eval()


def flux_inputs(h=3, w=4):
    g = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    img_ids = torch.stack([torch.zeros(h * w), rows.flatten(), cols.flatten()], -1)
    return dict(hidden_states=torch.randn(2, h * w, 8, generator=g), encoder_hidden_states=torch.randn(2, 5, 16, generator=g),
                pooled_projections=torch.randn(2, 8, generator=g), timestep=torch.tensor([0.5, 0.5]),
                img_ids=img_ids, txt_ids=torch.zeros(5, 3))


@contextmanager
def attention_calls():
    """Every (query, key) that torch's attention is called with, in call order: what the layers compute."""
    calls, original = [], F.scaled_dot_product_attention

    def spy(query, key, *args, **kwargs):
        calls.append((query.detach().clone(), key.detach().clone()))
        return original(query, key, *args, **kwargs)

    F.scaled_dot_product_attention = spy
    try:
        yield calls
    finally:
        F.scaled_dot_product_attention = original


def by_hand(query, key, image: slice, text: slice, groups):
    """Mean over heads of softmax(QK^T/sqrt(d)) at image rows and each group's text columns: (B, K, N)."""
    probs = (query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5).softmax(-1)[:, :, image]
    return torch.stack([probs[..., text][..., g].mean(-1) for g in groups], 1).mean(2)


def test_the_real_architectures_layers_are_found_without_memory():
    with torch.device("meta"):
        sd3, flux = random_transformer("sd3-medium"), random_transformer("flux-schnell")
    assert joint_attention_layers(sd3) == [f"transformer_blocks.{i}.attn" for i in range(24)]
    flux_layers = joint_attention_layers(flux)
    assert len(flux_layers) == 19 + 38 and flux_layers[19] == "single_transformer_blocks.0.attn"
    assert select_joint_layers(flux, ["double", "single_transformer_blocks.37"])[-1] == "single_transformer_blocks.37.attn"
    with pytest.raises(ValueError, match="matches no joint-attention layer"):
        select_joint_layers(sd3, "up")


def test_sd3_maps_are_the_attention_the_layers_compute():
    model, inputs = small_sd3(), sd3_inputs()
    with torch.no_grad(), attention_calls() as calls:
        plain = model(**inputs).sample
    with torch.no_grad(), JointAttentionRecorder(model, GROUPS) as rec:
        recorded = model(**inputs).sample
    assert torch.equal(plain, recorded)  # the output is untouched
    maps = rec.result()
    assert list(maps.per_layer) == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    n = 4 * 6  # a 8x12 latent in 2x2 patches
    for (query, key), layer in zip(calls, maps.per_layer.values()):
        expected = by_hand(query, key, slice(0, n), slice(n, n + 5), GROUPS).reshape(2, 2, 4, 6)
        torch.testing.assert_close(layer, expected, atol=1e-6, rtol=0)


def test_flux_maps_match_in_double_and_single_stream_blocks():
    model, inputs = small_flux(), flux_inputs()
    with torch.no_grad(), attention_calls() as calls:
        plain = model(**inputs).sample
    with torch.no_grad(), JointAttentionRecorder(model, GROUPS, heads=[1]) as rec:
        recorded = model(**inputs).sample
    assert torch.equal(plain, recorded)
    maps = rec.result()
    assert list(maps.per_layer)[1:] == ["single_transformer_blocks.0.attn", "single_transformer_blocks.1.attn"]
    for (query, key), layer in zip(calls, maps.per_layer.values()):
        head = slice(1, 2)
        expected = by_hand(query[:, head], key[:, head], slice(5, 17), slice(0, 5), GROUPS).reshape(2, 2, 3, 4)
        torch.testing.assert_close(layer, expected, atol=1e-6, rtol=0)


def test_steps_and_bad_input():
    model, inputs = small_sd3(), sd3_inputs()
    with torch.no_grad(), JointAttentionRecorder(model, GROUPS, layers="transformer_blocks.1", steps=[-1],
                                                 total_steps=2, heads="all") as rec:
        model(**inputs)
        model(**inputs)
    maps = rec.result()
    assert maps.steps == [1] and maps.per_layer["transformer_blocks.1.attn"].shape == (2, 2, 2, 4, 6)
    with pytest.raises(ValueError, match="reach past the 5 text tokens"), torch.no_grad():
        with JointAttentionRecorder(model, [[7]]):
            model(**inputs)


def test_processors_come_back_after_an_error():
    model = small_flux()
    before = dict(model.attn_processors)
    with pytest.raises(RuntimeError), JointAttentionRecorder(model, GROUPS):
        model(**{**flux_inputs(), "hidden_states": torch.zeros(2, 12, 3)})  # wrong channel count
    assert model.attn_processors == before


def concept_maps_by_hand(model, inputs, concepts, space):
    """ConceptAttention on an SD3 transformer written out from its parts, with explicit softmaxes: the concept
    stream through every block with the prompt stream's weights; per block (B, K, h, w)."""
    x = model.pos_embed(inputs["hidden_states"])
    temb = model.time_text_embed(inputs["timestep"], inputs["pooled_projections"])
    prompt = model.context_embedder(inputs["encoder_hidden_states"])
    c = model.context_embedder(concepts).expand(x.shape[0], -1, -1)
    maps = []
    for block in model.transformer_blocks:
        a, last = block.attn, block.context_pre_only
        heads = lambda t: t.unflatten(-1, (a.heads, -1)).transpose(1, 2)  # noqa: E731
        merge = lambda t: t.transpose(1, 2).flatten(2)  # noqa: E731
        softmax_attention = lambda q, k, v: (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1) @ v  # noqa: E731
        nx = block.norm1(x, emb=temb)[0]
        npr = block.norm1_context(prompt, temb) if last else block.norm1_context(prompt, emb=temb)[0]
        nc, *mods = (block.norm1_context(c, temb),) if last else block.norm1_context(c, emb=temb)
        q, k, v = heads(a.to_q(nx)), heads(a.to_k(nx)), heads(a.to_v(nx))
        kp, vp = heads(a.add_k_proj(npr)), heads(a.add_v_proj(npr))
        qc, kc, vc = heads(a.add_q_proj(nc)), heads(a.add_k_proj(nc)), heads(a.add_v_proj(nc))
        ox = softmax_attention(q, torch.cat([k, kp], 2), torch.cat([v, vp], 2))
        oc = softmax_attention(qc, torch.cat([k, kc], 2), torch.cat([v, vc], 2))
        image, concept = (merge(ox), merge(oc)) if space == "output" else (merge(q), merge(kc))
        maps.append((image @ concept.transpose(1, 2)).softmax(-1).transpose(1, 2).reshape(2, -1, 4, 6))
        if not last:
            gate_msa, shift, scale, gate_mlp = mods
            c = c + gate_msa[:, None] * a.to_add_out(merge(oc))
            c = c + gate_mlp[:, None] * block.ff_context(block.norm2_context(c) * (1 + scale[:, None]) + shift[:, None])
        prompt, x = block(hidden_states=x, encoder_hidden_states=prompt, temb=temb)
    return maps


@pytest.mark.parametrize("space", ["output", "cross"])
def test_concept_attention_maps_by_hand_and_the_image_untouched(space):
    model, inputs = small_sd3(), sd3_inputs()
    concepts = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(**inputs).sample
        with ConceptAttention(model, concepts, space=space) as rec:
            recorded = model(**inputs).sample
        expected = concept_maps_by_hand(model, inputs, concepts, space)
    assert torch.equal(plain, recorded)  # concepts attend, but nothing attends to them
    maps = rec.result()
    assert list(maps.per_layer) == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    for layer, by_hand_layer in zip(maps.per_layer.values(), expected):
        torch.testing.assert_close(layer, by_hand_layer, atol=1e-6, rtol=0)
    torch.testing.assert_close(maps.mean().sum(1), torch.ones(2, 4, 6))  # a distribution over the concepts


def test_concept_attention_on_flux_double_stream_blocks():
    model, inputs = small_flux(), flux_inputs()
    concepts = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    before = dict(model.attn_processors)
    with torch.no_grad():
        plain = model(**inputs).sample
        with ConceptAttention(model, concepts, steps=[-1], total_steps=2) as rec:
            model(**inputs)
            recorded = model(**inputs).sample
    assert torch.equal(plain, recorded) and model.attn_processors == before
    maps = rec.result()
    assert maps.steps == [1] and maps.per_layer["transformer_blocks.0.attn"].shape == (2, 2, 3, 4)
    assert not model.transformer_blocks[0]._forward_pre_hooks and not model.transformer_blocks[0]._forward_hooks


def test_concept_attention_refuses_bad_input_and_restores_after_an_error():
    model = small_flux()
    concepts = torch.zeros(2, 16)
    with pytest.raises(ValueError, match="single-stream"):
        ConceptAttention(model, concepts, layers="single")
    with pytest.raises(ValueError, match="context_embedder reads 16"):
        ConceptAttention(model, torch.zeros(2, 7))
    with pytest.raises(ValueError, match="space"):
        ConceptAttention(model, concepts, space="value")
    before = dict(model.attn_processors)
    with pytest.raises(RuntimeError), ConceptAttention(model, concepts):
        model(**{**flux_inputs(), "hidden_states": torch.zeros(2, 12, 3)})
    assert model.attn_processors == before and not model.transformer_blocks[0]._forward_hooks

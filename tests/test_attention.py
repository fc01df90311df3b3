import numpy as np
import pytest
import torch

from foundseg.diffusion import (END, EVERY_STEP, START, Capture, CrossAttentionRecorder, add_noise, cross_attention_layers,
                                denoise_attention, encode_image, generate, renoise_attention, select_layers,
                                token_indices)
from foundseg.data.vocab import UnknownWordWarning
from foundseg.models import load_sd
from foundseg.testing import save_random_sd


@pytest.fixture(scope="module")
def pipe(tiny_sd_dir):
    return load_sd(str(tiny_sd_dir))


def test_token_indices(pipe):
    tok = pipe.tokenizer
    assert token_indices(tok, "a red circle and a blue star", ["circle", "star"]) == [[3], [7]]
    assert token_indices(tok, "a red circle", [START, END]) == [[0], [4]]
    with pytest.warns(UnknownWordWarning, match="'zebra' is unknown to this model's tokenizer"):
        assert token_indices(tok, "a zebra on the grass", ["zebra"]) == [[2, 3, 4, 5, 6]]  # split word: all its tokens
    with pytest.raises(ValueError, match=r"'horse' is not in the prompt .* its words are \['a', 'red', 'circle'\]"):
        token_indices(tok, "a red circle", ["horse"])


def test_layer_selection(pipe):
    names = cross_attention_layers(pipe.unet)
    assert len(names) == 7 and all(n.endswith("attn2") for n in names)
    assert all(n.startswith("up_blocks") for n in select_layers(pipe.unet, "up"))
    assert select_layers(pipe.unet, ["mid"]) == ["mid_block.attentions.0.transformer_blocks.0.attn2"]
    assert len(select_layers(pipe.unet, "up_blocks.1")) == 2
    with pytest.raises(ValueError, match="matches no cross-attention layer"):
        select_layers(pipe.unet, "left")


def reference_probs(pipe, layer_name, latents, t, text, token):
    """Attention probabilities of one layer computed by hand from its inputs."""
    attn = pipe.unet.get_submodule(layer_name)
    seen = {}
    handle = attn.register_forward_pre_hook(lambda m, a, k: seen.setdefault("x", (a, k)), with_kwargs=True)
    try:
        pipe.unet(latents, t, encoder_hidden_states=text)
    finally:
        handle.remove()
    args, kwargs = seen["x"]
    hidden = args[0] if args else kwargs["hidden_states"]
    context = kwargs["encoder_hidden_states"]
    q, k = attn.to_q(hidden), attn.to_k(context)
    b, n, d = q.shape
    h = attn.heads
    q = q.reshape(b, n, h, d // h).transpose(1, 2)
    k = k.reshape(b, -1, h, d // h).transpose(1, 2)
    probs = ((q @ k.transpose(-1, -2)) * attn.scale).softmax(-1)
    return probs.mean(1)[0, :, token]


@torch.no_grad()
def test_recorded_maps_equal_hand_computed_attention(pipe):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    maps = renoise_attention(pipe, image, "a red circle", ["circle"], t=200, seed=3)
    latents = add_noise(pipe, encode_image(pipe, image), 200, seed=3)
    text = pipe.encode_prompt("a red circle", "cpu", 1, False)[0]
    for name in ("down_blocks.0.attentions.0.transformer_blocks.0.attn2", "mid_block.attentions.0.transformer_blocks.0.attn2"):
        want = reference_probs(pipe, name, latents, 200, text, 3)
        got = maps.per_layer[name][0, 0]
        assert torch.allclose(got.flatten(), want, atol=1e-6)
    assert maps.resolutions["down_blocks.0.attentions.0.transformer_blocks.0.attn2"] == (8, 8)
    assert maps.resolutions["mid_block.attentions.0.transformer_blocks.0.attn2"] == (4, 4)
    assert maps.mean().shape == (1, 1, 8, 8)


def test_daam_aggregation_equals_a_hand_written_one(pipe):
    g = generate(pipe, "a red circle", ["red", "circle"], Capture(steps="all", heads="all"), num_inference_steps=3)
    size = (16, 16)
    total, pairs = 0, 0
    for name, maps in g.maps.per_layer.items():  # (B, heads, words, h, w), averaged over the 3 steps
        if name.startswith("mid_block"):
            continue  # DAAM leaves the mid block out
        for h in range(maps.shape[1]):
            up = torch.nn.functional.interpolate(maps[:, h], size=size, mode="bicubic", align_corners=False)
            total, pairs = total + up.clamp(min=0) * 3, pairs + 1  # summed over the steps, as DAAM's store does
    daam = g.maps.mean(size, aggregation="daam")
    assert torch.allclose(daam, total / pairs, atol=1e-6)
    assert not torch.allclose(daam / 3, g.maps.mean(size), atol=1e-3)  # not foundseg's default
    with pytest.raises(ValueError, match="heads='all'"):
        generate(pipe, "a red circle", ["red"], num_inference_steps=2).maps.mean(aggregation="daam")


def test_recording_does_not_change_the_image(pipe):
    plain = pipe("a red circle", num_inference_steps=4, generator=torch.Generator().manual_seed(0), output_type="np")
    g = generate(pipe, "a red circle", ["circle"], num_inference_steps=4, seed=0)
    assert np.array_equal(g.image, np.round(plain.images[0] * 255).astype(np.uint8))
    assert g.maps.steps == [3]


def test_steps_heads_and_trajectory(pipe):
    g = generate(pipe, "a red circle", ["red", "circle"], Capture("up", heads="all", steps="all", trajectory=True),
                 num_inference_steps=3)
    assert g.maps.steps == [0, 1, 2] and sorted(g.maps.per_step) == [0, 1, 2]
    first = next(iter(g.maps.per_layer.values()))
    assert first.shape[:3] == (1, 2, 2)  # batch, heads, words
    sub = generate(pipe, "a red circle", ["circle"], Capture(steps=[0, -1], heads=[1]), num_inference_steps=4)
    assert sub.maps.steps == [0, 3]
    with pytest.raises(ValueError, match="out of range"):
        generate(pipe, "a red circle", ["circle"], Capture(steps=[7]), num_inference_steps=4)
    with pytest.raises(ValueError, match="heads"):
        generate(pipe, "a red circle", ["circle"], Capture(heads=[5]), num_inference_steps=2)


def test_memory_does_not_grow_with_steps(pipe):
    groups = token_indices(pipe.tokenizer, "a red circle", ["circle"])
    sizes = []
    for n in (2, 6):
        with CrossAttentionRecorder(pipe.unet, groups, layers="down", steps="all", conditional_half=True) as rec:
            pipe("a red circle", num_inference_steps=n, output_type="latent")
        sizes.append(sum(t.numel() for t in rec.sums.values()))
        assert len(rec.sums) == 2 and rec.counts == {k: n for k in rec.sums}
    assert sizes[0] == sizes[1]


def test_processors_are_restored_even_when_the_pipeline_raises(pipe):
    before = dict(pipe.unet.attn_processors)

    def boom(*args, **kwargs):
        raise RuntimeError("stop at step 1")

    groups = token_indices(pipe.tokenizer, "a red circle", ["circle"])
    with pytest.raises(RuntimeError, match="stop at step 1"):
        with CrossAttentionRecorder(pipe.unet, groups):
            pipe("a red circle", num_inference_steps=3, callback_on_step_end=boom)
    after = pipe.unet.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert not pipe.unet._forward_pre_hooks
    with CrossAttentionRecorder(pipe.unet, groups, layers="up"):  # only the recorded layers are swapped
        during = pipe.unet.attn_processors
        recorded = [k for k in before if k.startswith("up_blocks") and "attn2" in k]
        assert recorded and all(during[k] is not before[k] for k in recorded)
        assert all(during[k] is before[k] for k in before if k not in recorded)


def test_renoise_options_and_denoising(pipe):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a = renoise_attention(pipe, image, "a red circle", ["circle"], t=500, seed=1).mean()
    b = renoise_attention(pipe, image, "a red circle", ["circle"], t=500, seed=1).mean()
    c = renoise_attention(pipe, image, "a red circle", ["circle"], t=None).mean()
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="t must be"):
        renoise_attention(pipe, image, "a red circle", ["circle"], t=1000)
    d = denoise_attention(pipe, image, "a red circle", "circle", strength=0.5, num_inference_steps=6)
    assert d.image.shape == (32, 32, 3) and sorted(d.maps.per_step) == [0, 1, 2]
    last = denoise_attention(pipe, image, "a red circle", "circle", Capture(steps=-1), strength=0.5, num_inference_steps=6)
    assert last.maps.steps == [2] and np.array_equal(last.image, d.image)  # the last step img2img ran


def test_a_capture_is_frozen_and_checked_before_anything_runs(pipe):
    c = Capture(layers=["up"], concepts=["square"])
    assert c.layers == ("up",) and c.concepts == ("square",) and hash(c)
    with pytest.raises(AttributeError):
        c.steps = "all"
    with pytest.raises(ValueError, match="heads must be"):
        Capture(heads="max")
    assert EVERY_STEP.steps == "all" and EVERY_STEP.trajectory


@pytest.mark.slow
def test_real_sd15_architecture(tmp_path):
    pipe = load_sd(str(save_random_sd(tmp_path / "sd15")))
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 8x8 latents
    maps = renoise_attention(pipe, image, "a red circle", ["circle"], t=100, size=(64, 64))
    res = maps.resolutions
    assert len(res) == 16
    count = {r: sum(v == r for v in res.values()) for r in set(res.values())}
    assert count == {(8, 8): 5, (4, 4): 5, (2, 2): 5, (1, 1): 1}
    assert pipe.unet.attn_processors.keys() == dict(pipe.unet.attn_processors).keys()


def test_a_huge_photo_is_encoded_at_the_pipelines_own_size(pipe):
    photo = np.random.default_rng(0).integers(0, 256, (8000, 8000, 3), dtype=np.uint8)
    assert encode_image(pipe, photo).shape == (1, 4, 8, 8)  # 32 px, the tiny pipeline's own resolution


def test_bad_input(pipe):
    with pytest.raises(ValueError, match="prompt is .* tokens long"):
        token_indices(pipe.tokenizer, " ".join(["circle"] * 40), ["circle"])
    with pytest.raises(ValueError, match="prompt must be"):
        token_indices(pipe.tokenizer, "", ["circle"])
    with pytest.raises(ValueError, match="size must be positive multiples of 8"):
        encode_image(pipe, np.zeros((32, 32, 3), np.uint8), size=(30, 30))
    with pytest.raises(ValueError, match="image: a 32x8000 image .* crop it first or give the size"):
        encode_image(pipe, np.zeros((32, 8000, 3), np.uint8))
    with pytest.raises(ValueError, match="image must have shape"):
        renoise_attention(pipe, np.zeros((32, 32, 2), np.uint8), "a red circle", ["circle"])
    from diffusers import UNet2DModel

    plain = UNet2DModel(sample_size=8, block_out_channels=(32, 32), norm_num_groups=8,
                        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    with pytest.raises(ValueError, match="no attention processors"):
        CrossAttentionRecorder(plain, [[1]])

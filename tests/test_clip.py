import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foundseg.clip import SHAPES_BACKGROUND, ClassPrompts, dense_clip, gradcam, semantic_map, threshold_maps
from foundseg.clip.inputs import prepare_image
from foundseg.clip.prompts import class_embeddings
from foundseg.models import load_clip
from foundseg.testing import save_random_clip


@pytest.fixture(scope="module")
def clip(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


@pytest.fixture
def image():
    return np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)  # not square


def reference_gradcam(clip, image, name, pooling, scale=True):
    """Plain Grad-CAM: full forward with grad, a hook on the last block's first LayerNorm, one class at a time;
    the raw token-grid map when not ``scale``."""
    model, tokenizer = clip
    pixels, size = prepare_image(model, image)
    acts = {}
    layer = model.vision_model.encoder.layers[-1]
    handle = layer.layer_norm1.register_forward_hook(lambda m, a, out: acts.setdefault("x", out))
    try:
        with torch.enable_grad():
            tokens = model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
            ln = model.vision_model.post_layernorm
            pooled = ln(tokens[:, 0]) if pooling == "cls" else ln(tokens[:, 1:]).mean(1)
            img = F.normalize(model.visual_projection(pooled), dim=-1)
            score = (img @ class_embeddings(model, tokenizer, [name]).T)[0, 0]
            (grad,) = torch.autograd.grad(score, acts["x"])
    finally:
        handle.remove()
    act, grad = acts["x"][0, 1:].detach(), grad[0, 1:]
    cam = torch.relu((grad.mean(0) * act).sum(-1))
    gh, gw = pixels.shape[-2] // 8, pixels.shape[-1] // 8
    cam = cam.reshape(gh, gw)
    if not scale:
        return cam
    cam = (cam - cam.min()) / (cam.max() - cam.min())
    return F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


@pytest.mark.parametrize("pooling", ["cls", "patch_mean"])
def test_gradcam_equals_reference_for_every_class(clip, image, pooling):
    names = ["circle", "square", "star"]
    cam = gradcam(clip, image, names, pooling=pooling)
    assert cam.maps.shape == (3, 40, 56) and cam.maps.min() >= 0 and cam.maps.max() <= 1
    for name, got in zip(names, cam.maps):
        assert np.abs(got - reference_gradcam(clip, image, name, pooling)).max() <= 1e-5


@pytest.mark.parametrize("kwargs", [{}, {"background": SHAPES_BACKGROUND}, {"normalise": "joint"},
                                    {"target": "layer_input"}, {"target": "layer_output", "pooling": "patch_mean"}])
def test_a_batch_gives_each_image_the_maps_it_gets_alone(clip, kwargs):
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(32, 32, 3)] * 3 + [(40, 56, 3)] * 2]
    names = ["circle", "square", "star"]
    batch = gradcam(clip, images, names, batch_size=2, **kwargs)  # two sizes, chunks of two
    assert isinstance(batch, list) and len(batch) == 5
    for img, got in zip(images, batch):
        alone = gradcam(clip, img, names, **kwargs)
        assert got.maps.shape == alone.maps.shape == (3, *img.shape[:2])
        assert np.abs(got.maps - alone.maps).max() <= 1e-5 and np.abs(got.scores - alone.scores).max() <= 1e-6
    stacked = dense_clip(clip, np.stack(images[:3]), names)
    for img, got in zip(images, stacked):
        assert np.abs(got.maps - dense_clip(clip, img, names).maps).max() <= 1e-5


def test_class_prompts_encode_each_class_once_for_every_image(clip, image, monkeypatch):
    import foundseg.clip.prompts as prompts_module

    encoded = []
    original = prompts_module.text_embeddings
    monkeypatch.setattr(prompts_module, "text_embeddings", lambda m, t, texts: encoded.extend(texts) or original(m, t, texts))
    by_names = gradcam(clip, image, ["circle", "square"], background=SHAPES_BACKGROUND)
    square_alone = dense_clip(clip, image, ["square"]).maps[0]
    encoded.clear()
    prompts = ClassPrompts(clip, ["circle", "square"], background=SHAPES_BACKGROUND)
    before = len(encoded)
    assert before == 2 + len(SHAPES_BACKGROUND), encoded
    cams = gradcam(clip, [image, image[:32, :32]], prompts)
    square = dense_clip(clip, image, prompts.subset(["square"]))
    assert len(encoded) == before and [c.class_names for c in cams] == [["circle", "square"]] * 2
    assert np.abs(cams[0].maps - by_names.maps).max() <= 1e-6 and np.allclose(square.maps[0], square_alone, atol=1e-6)
    prompts.subset(["star"])
    assert encoded[before:] == ["a photo of a star."] and prompts.names == ["circle", "square", "star"]


def test_class_prompts_refuse_what_they_cannot_serve(clip, image, tiny_clip_dir):
    prompts = ClassPrompts(clip, ["circle"])
    with pytest.raises(ValueError, match="templates: set them when building the ClassPrompts"):
        gradcam(clip, image, prompts, templates=["a {}."])
    other = load_clip(str(tiny_clip_dir))  # the same weights, another model object
    with pytest.raises(ValueError, match="class_names: these ClassPrompts were encoded with another CLIP"):
        gradcam(other, image, prompts)
    with pytest.raises(ValueError, match="hold no class yet"):
        dense_clip(clip, image, ClassPrompts(clip))
    with pytest.raises(ValueError, match="images must hold at least one image"):
        gradcam(clip, [], prompts)
    with pytest.raises(ValueError, match="batch_size"):
        gradcam(clip, image, prompts, batch_size=0)


def test_joint_normalisation_keeps_the_classes_strengths(clip, image):
    names = ["circle", "square", "star"]
    raw = torch.stack([reference_gradcam(clip, image, n, "cls", scale=False) for n in names])
    joint = (raw - raw.min()) / (raw.max() - raw.min())
    expected = F.interpolate(joint[None], size=(40, 56), mode="bilinear", align_corners=False)[0].numpy()
    got = gradcam(clip, image, names, pooling="cls", normalise="joint").maps
    assert np.abs(got - expected).max() <= 1e-5


def test_one_backward_for_all_classes(clip, image, monkeypatch):
    calls = []
    original = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or original(*a, **k))
    gradcam(clip, image, ["circle", "square", "star", "heart"])
    assert len(calls) == 1


def test_class_embeddings_average_each_class_own_prompts_in_any_batch_size(clip):
    from foundseg.models import text_embeddings

    templates, synonyms = ["a photo of a {}.", "a drawing of a {}."], {"circle": ["disc"]}
    names = ["circle", "square", "star"]
    one_batch = class_embeddings(clip.model, clip.tokenizer, names, templates, synonyms)
    by_threes = class_embeddings(clip.model, clip.tokenizer, names, templates, synonyms, batch_size=3)
    for k, name in enumerate(names):
        prompts = [t.format(n) for t in templates for n in [name, *synonyms.get(name, [])]]
        expected = F.normalize(F.normalize(text_embeddings(clip.model, clip.tokenizer, prompts), dim=-1).mean(0), dim=0)
        assert torch.allclose(one_batch[k], expected, atol=1e-5) and torch.allclose(by_threes[k], expected, atol=1e-5)


def test_background_softmax_templates_and_targets(clip, image):
    plain = gradcam(clip, image, ["circle", "square"])
    with_bg = gradcam(clip, image, ["circle", "square"], background=SHAPES_BACKGROUND)
    assert ((with_bg.scores > 0) & (with_bg.scores < 1)).all()
    assert not np.allclose(plain.maps, with_bg.maps)
    ensemble = gradcam(clip, image, ["circle"], templates=["a photo of a {}.", "a drawing of a {}."],
                       synonyms={"circle": ["disc"]})
    assert ensemble.maps.shape == (1, 40, 56)
    # after the last block, patch tokens do not reach the CLS embedding: gradients vanish
    after = gradcam(clip, image, ["circle"], pooling="cls", target="layer_output")
    assert np.allclose(after.maps, 0)
    early = gradcam(clip, image, ["circle"], target="layer_input", layer=0).maps
    assert np.isfinite(early).all() and not np.allclose(early, plain.maps[:1])


@pytest.mark.parametrize("kwargs, match", [
    ({"class_names": []}, "class_names"), ({"class_names": "circle"}, "class_names"),
    ({"target": "qkv"}, "target"), ({"pooling": "max"}, "pooling"), ({"layer": 5}, "layer"),
    ({"templates": ["a photo"]}, "templates"), ({"input_size": 3}, "input_size"), ({"input_size": 0}, "input_size"),
    ({"normalise": "max"}, "normalise"),
    ({"class_names": ["circle", "square", "circle"]}, "class_names must not repeat"),
    ({"class_names": [" ".join(["circle"] * 40)]}, "class_names: prompt .* longer than"),
    ({"image": np.zeros((4, 30, 3), np.uint8)}, "smaller than one 8 px patch"),
    ({"image": np.zeros((2, 16, 16), np.uint8)}, "image must have shape"),
])
def test_bad_arguments(clip, image, kwargs, match):
    args = {"images": kwargs.pop("image", image), "class_names": ["circle"], **kwargs}
    with pytest.raises(ValueError, match=match):
        gradcam(clip, **args)
    with pytest.raises(ValueError, match="image"):
        gradcam(clip, np.zeros((4, 4), np.int64), ["circle"])


def test_a_model_without_vision_tower_is_refused(clip, image):
    with pytest.raises(ValueError, match="clip must hold a CLIPModel with a vision tower"):
        gradcam((clip.model.text_model, clip.tokenizer), image, ["circle"])


def test_dense_clip_equals_self_only_attention(clip, image):
    """MaskCLIP's value path is the last block with attention forced onto each token itself."""
    model, _ = clip
    got = dense_clip(clip, image, ["circle", "square"])
    pixels, size = prepare_image(model, image)
    n = (pixels.shape[-2] // 8) * (pixels.shape[-1] // 8) + 1
    eye_mask = torch.full((1, 1, n, n), float("-inf"))
    eye_mask[..., torch.arange(n), torch.arange(n)] = 0
    vm = model.vision_model
    with torch.no_grad():
        h = vm.pre_layrnorm(vm.embeddings(pixels, interpolate_pos_encoding=True))
        for block in vm.encoder.layers[:-1]:
            h = block(h, None)
        h = vm.encoder.layers[-1](h, eye_mask)
        dense = F.normalize(model.visual_projection(vm.post_layernorm(h[0, 1:])), dim=-1)
        text = class_embeddings(model, clip.tokenizer, ["circle", "square"])
        sims = (dense @ text.T).T.reshape(2, pixels.shape[-2] // 8, pixels.shape[-1] // 8)
        want = F.interpolate(sims[None], size=size, mode="bilinear", align_corners=False)[0].numpy()
    assert np.abs(got.maps - want).max() < 1e-5


def test_masks_from_maps():
    maps = np.stack([np.linspace(0, 1, 100).reshape(10, 10), np.linspace(1, 0, 100).reshape(10, 10)])
    assert threshold_maps(maps, "fixed", 0.5)[0].sum() == 50
    assert threshold_maps(maps, "percentile", 80)[1].sum() == 20
    bimodal = np.where(np.arange(100).reshape(10, 10) < 30, 0.1, 0.9)
    assert threshold_maps(bimodal, "otsu")[0].sum() == 70
    labels = semantic_map(maps, [3, 5], background_threshold=0.9)
    assert set(np.unique(labels)) == {0, 3, 5} and labels[0, 0] == 5 and labels[-1, -1] == 3
    with pytest.raises(ValueError, match="method"):
        threshold_maps(maps, "mean")
    with pytest.raises(ValueError, match="class_ids"):
        semantic_map(maps, [1])


@pytest.mark.slow
def test_real_clip_vit_b16_architecture(tmp_path):
    clip = load_clip(str(save_random_clip(tmp_path / "vit-b16")))
    assert clip.model.config.vision_config.patch_size == 16
    for shape in ((224, 224, 3), (240, 320, 3)):
        img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        cam = gradcam(clip, img, ["circle", "square"], background=SHAPES_BACKGROUND, input_size=224)
        assert cam.maps.shape == (2, *shape[:2]) and np.isfinite(cam.maps).all()
        dense = dense_clip(clip, img, ["circle", "square"], input_size=224)
        assert dense.maps.shape == (2, *shape[:2])

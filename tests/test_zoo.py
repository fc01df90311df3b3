"""The shipped shapes-world models load like real checkpoints and meet the bars their model cards state."""
import json

import pytest
import torch

from foundseg.models import load, load_clip, load_sd
from foundseg.models.loader import ZOO_DIR
from foundseg.eval.zoo import clip_metrics, sd_metrics


def test_shipped_models_load_through_the_same_code_path():
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer

    clip = load_clip("shapes-clip")
    assert isinstance(clip.model, CLIPModel) and isinstance(clip.tokenizer, CLIPTokenizer)
    pipe = load("shapes-sd")
    assert isinstance(pipe, StableDiffusionPipeline) and pipe.safety_checker is None
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.vae, AutoencoderKL)
    assert isinstance(pipe.text_encoder, CLIPTextModel) and pipe.unet.dtype == torch.float32
    # shapes-sd's text encoder is shapes-clip's text tower, frozen
    for (name, a), b in zip(clip.model.text_model.state_dict().items(), pipe.text_encoder.state_dict().values()):
        assert torch.equal(a, b), name
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    dit = load("shapes-dit")
    assert isinstance(dit, StableDiffusion3Pipeline) and isinstance(dit.transformer, SD3Transformer2DModel)
    assert dit.transformer.dtype == torch.float32 and dit.text_encoder_3 is None
    for tower in (dit.text_encoder, dit.text_encoder_2):  # shapes-clip's text tower with its projection, in both slots
        assert torch.equal(tower.text_projection.weight, clip.model.text_projection.weight)
        for (name, a), b in zip(clip.model.text_model.state_dict().items(), tower.text_model.state_dict().values()):
            assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(dit.vae.state_dict().values(), pipe.vae.state_dict().values()))
    for name in ("shapes-clip", "shapes-sd", "shapes-dit"):
        card = (ZOO_DIR / name / "README.md").read_text()
        assert "Measured" in card and (ZOO_DIR / name / "loss.png").exists()
        assert json.loads((ZOO_DIR / name / "metrics.json").read_text())


@pytest.fixture(scope="module")
def clip_measured():
    return clip_metrics(load_clip("shapes-clip"), n_images=500)


@pytest.fixture(scope="module")
def sd_measured():
    # the model card's protocol, so test and card agree on every bar (two-object prompts have no bar)
    return sd_metrics(load_sd("shapes-sd"), two_objects=False)


@pytest.fixture(scope="module")
def dit_measured():
    return sd_metrics(load_sd("shapes-dit"), concept_attention=False, two_objects=False)  # the card's protocol


@pytest.mark.slow
def test_shapes_clip_recognises_shapes(clip_measured):
    assert clip_measured["n_single"] >= 150 and clip_measured["zero_shot_top1"] >= 0.90


@pytest.mark.slow
def test_shapes_clip_knows_which_classes_are_present(clip_measured):
    assert clip_measured["presence_auc_multi"] >= 0.90


@pytest.mark.slow
def test_shapes_clip_gradcam_beats_the_centred_disc(clip_measured):
    assert clip_measured["gradcam_iou_single"] >= clip_measured["disc_iou_single"] + 0.03
    assert clip_measured["gradcam_iou_multi"] >= clip_measured["disc_iou_multi"] + 0.03


@pytest.mark.slow
def test_shapes_sd_follows_the_colour_of_the_caption(sd_measured):
    assert sd_measured["colour_rate"] >= 0.95


@pytest.mark.slow
def test_shapes_sd_follows_colour_and_shape(sd_measured):
    assert sd_measured["colour_and_shape_rate"] >= 0.75


@pytest.mark.slow
def test_shapes_sd_word_attention_finds_the_object(sd_measured):
    assert sd_measured["n_single"] >= 100
    assert sd_measured["attention_iou"] >= sd_measured["disc_iou"] + 0.05


@pytest.mark.slow
def test_shapes_dit_follows_colour_and_its_word_map_finds_the_object(dit_measured):
    assert dit_measured["n_single"] >= 100 and dit_measured["colour_rate"] >= 0.95
    assert dit_measured["attention_iou"] >= dit_measured["disc_iou"] + 0.05


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="shapes-dit draws the caption's shape in 19% of samples (its card), short of "
                                       "shapes-sd's 0.75 bar: its 3000 training steps taught colours, not shapes")
def test_shapes_dit_follows_colour_and_shape(dit_measured):
    assert dit_measured["colour_and_shape_rate"] >= 0.75

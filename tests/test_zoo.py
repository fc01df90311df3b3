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
    for name in ("shapes-clip", "shapes-sd"):
        card = (ZOO_DIR / name / "README.md").read_text()
        assert "Measured" in card and (ZOO_DIR / name / "loss.png").exists()
        assert json.loads((ZOO_DIR / name / "metrics.json").read_text())


@pytest.fixture(scope="module")
def clip_measured():
    return clip_metrics(load_clip("shapes-clip"), n_images=500)


@pytest.fixture(scope="module")
def sd_measured():
    return sd_metrics(load_sd("shapes-sd"))  # the model card's protocol, so test and card agree on every bar


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

"""The shipped shapes-world models load like real checkpoints and meet the bars their model cards state."""
import json

import pytest
import torch

from foundseg.models import load, load_clip, load_sd
from foundseg.models.loader import ZOO_DIR
from foundseg.training.card import clip_metrics, sd_metrics


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


@pytest.mark.slow
def test_shapes_clip_recognises_and_localises():
    m = clip_metrics(load_clip("shapes-clip"), n_images=500)
    assert m["n_single"] >= 150 and m["zero_shot_top1"] >= 0.90
    assert m["presence_auc_multi"] >= 0.90
    assert m["gradcam_iou_single"] >= m["disc_iou_single"] + 0.03
    assert m["gradcam_iou_multi"] >= m["disc_iou_multi"] + 0.03


@pytest.mark.slow
def test_shapes_sd_follows_captions_and_its_attention_finds_the_object():
    m = sd_metrics(load_sd("shapes-sd"), seeds=3, steps=20)
    assert m["n_single"] >= 100
    assert m["colour_and_shape_rate"] >= 0.75
    assert m["attention_iou"] >= m["disc_iou"] + 0.05

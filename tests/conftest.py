"""Fixtures: tiny models built from configs (the environment is set by the top-level conftest.py)."""
import pytest
import torch


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny CLIPModel built from a config (random weights) saved with the shapes-world tokenizer."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    from foundseg.data import write_tokenizer

    d = tmp_path_factory.mktemp("tiny-clip")
    tok = CLIPTokenizer.from_pretrained(write_tokenizer(d))
    common = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2)
    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(common, vocab_size=len(tok), max_position_embeddings=32,
                                         eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                                         pad_token_id=tok.pad_token_id),
                        vision_config=dict(common, image_size=32, patch_size=8), projection_dim=16)
    CLIPModel(config).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory, tiny_clip_dir):
    """A tiny StableDiffusionPipeline built from configs (random weights): 32 px images, 8x8 latents."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPModel, CLIPTokenizer

    from foundseg.training.sd import SD_SCHEDULE

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny-sd")
    vae = AutoencoderKL(block_out_channels=[16, 32, 32], down_block_types=["DownEncoderBlock2D"] * 3,
                        up_block_types=["UpDecoderBlock2D"] * 3, latent_channels=4, norm_num_groups=8,
                        sample_size=32)
    unet = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1,
                                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=2, norm_num_groups=8)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=CLIPModel.from_pretrained(tiny_clip_dir).text_model,
                                   tokenizer=CLIPTokenizer.from_pretrained(tiny_clip_dir), unet=unet,
                                   scheduler=DDIMScheduler(**SD_SCHEDULE, set_alpha_to_one=False),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(d)
    return d

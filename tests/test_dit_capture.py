"""The capture, re-noising and feature functions read an SD3 pipeline (shapes-dit, and SD3-medium's real
architecture with random weights) as they read a UNet pipeline."""
import numpy as np
import pytest
import torch

from foundseg.data import sample
from foundseg.diffusion import (Capture, add_noise, denoise_attention, denoising_errors, encode_image, extract_features,
                                generate, output_layers, renoise_attention, renoise_attention_at, vae_latents)
from foundseg.diffusion.denoiser import is_mmdit
from foundseg.eval import denoise_curve
from foundseg.models import load_sd


@pytest.fixture(scope="module")
def dit():
    return load_sd("shapes-dit")


@pytest.fixture(scope="module")
def unet_pipe():
    return load_sd("shapes-sd")


def test_generation_maps_on_the_patch_grid_and_concepts_leave_the_image_alone(dit):
    joint = generate(dit, "a red circle", ["red", "circle"], num_inference_steps=3)
    concept = generate(dit, "a red circle", ["circle"], Capture(concepts=["square", "triangle"]), num_inference_steps=3)
    assert is_mmdit(dit) and joint.maps.mean().shape == (1, 2, 8, 8)
    assert concept.maps.mean().shape == (1, 1, 8, 8)  # the words' maps only, not the other concepts'
    assert np.array_equal(joint.image, concept.image)  # concept tokens change nothing the image sees
    circle = generate(dit, "a red circle", ["circle"], num_inference_steps=3)
    assert joint.maps.joint is None and circle.maps.joint is None
    assert torch.equal(concept.maps.joint.mean(), circle.maps.mean())  # the same pass gives the joint maps too
    both = generate(dit, "a red circle", ["circle", "red"], Capture(concepts=["square"]), num_inference_steps=3)
    share = both.maps.mean()[0].sum(0)  # two of three concepts: their share of each token is below one
    assert bool(((share > 0) & (share < 1)).all())


def test_renoising_and_denoising_again_on_sd3(dit):
    s = sample("test", 0)
    maps = renoise_attention(dit, s.image, s.caption, ["crescent"], t=400, seed=2)
    assert maps.steps == [0] and maps.mean().shape == (1, 1, 8, 8)
    assert torch.equal(maps.mean(), renoise_attention(dit, s.image, s.caption, ["crescent"], t=400, seed=2).mean())
    for concepts in (None, ["circle", "square"]):  # one recorder for several t gives each t's own maps
        at = renoise_attention_at(dit, s.image, s.caption, ["crescent"], [0, 400, 900], Capture(concepts=concepts),
                                  seed=2)
        for t, m in at.items():
            alone = renoise_attention(dit, s.image, s.caption, ["crescent"], Capture(concepts=concepts), t=t, seed=2)
            assert m.steps == [0] and torch.equal(m.mean(), alone.mean()), (concepts, t)
            if concepts:
                assert torch.equal(m.joint.mean(), at_joint[t].mean())
        at_joint = at
    again = denoise_attention(dit, s.image, s.caption, ["crescent"], Capture(steps="all", concepts=["circle"],
                                                                             trajectory=True),
                              strength=0.5, num_inference_steps=4)
    assert again.image.shape == (32, 32, 3) and sorted(again.maps.per_step) == [0, 1]
    assert again.maps.per_step[0].shape == (1, 1, 8, 8)
    plain = denoise_attention(dit, s.image, s.caption, ["crescent"], strength=0.5, num_inference_steps=4)
    assert np.array_equal(again.image, plain.image)  # the denoising itself is the same, and so are its joint maps
    assert all(torch.equal(again.maps.joint.per_step[k], plain.maps.per_step[k]) for k in (0, 1))
    items = [(s.image, s.caption, "crescent", s.mask == s.class_ids[0])]
    both = denoise_curve(dit, items, 0.5, 4, concepts=["circle"])
    assert both["joint"] == denoise_curve(dit, items, 0.5, 4)["all"] and sorted(both["all"]) == [1, 2]


def test_flow_matching_noise_and_features(dit):
    latents = encode_image(dit, sample("test", 0).image)
    noise = add_noise(dit, torch.zeros_like(latents), 500, seed=3)  # sigma = 0.5: half the noise, half the data
    torch.testing.assert_close(add_noise(dit, latents, 500, seed=3), 0.5 * latents + noise)
    assert torch.equal(add_noise(dit, latents, 0, seed=3), latents)
    features = extract_features(dit, sample("test", 0).image, t=200, last=len(output_layers(dit.transformer)))
    assert features.shape == (128, 8, 8)
    with pytest.raises(ValueError, match="last must be between 1 and 4"):
        extract_features(dit, sample("test", 0).image, last=5)


def test_diffusion_classifier_scores_the_transformers_velocity(dit):
    image = sample("test", 0).image
    errors = denoising_errors(dit, image, ["a circle", "a crescent"], timesteps=(200, 700), seed=4)
    latents = encode_image(dit, image).expand(2, -1, -1, -1)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(4))
    sigma = torch.tensor([0.2, 0.7])[:, None, None, None]
    text, _, pooled, _ = dit.encode_prompt("a crescent", None, None, "cpu", 1, False)
    with torch.no_grad():
        velocity = dit.transformer(hidden_states=(1 - sigma) * latents + sigma * noise,
                                   timestep=torch.tensor([200.0, 700.0]), encoder_hidden_states=text.expand(2, -1, -1),
                                   pooled_projections=pooled.expand(2, -1)).sample
    torch.testing.assert_close(errors[1], ((velocity - (noise - latents)) ** 2).mean())
    assert errors[0] != errors[1]


def test_what_only_one_kind_of_denoiser_has_is_refused(dit, unet_pipe):
    with pytest.raises(ValueError, match="concepts .* need a diffusion transformer"):
        generate(unet_pipe, "a red circle", ["circle"], Capture(concepts=["square"]), num_inference_steps=1)
    with pytest.raises(ValueError, match="resolutions select UNet levels"):
        renoise_attention(dit, sample("test", 0).image, "an orange crescent", ["crescent"], Capture(resolutions=[8]))
    with pytest.raises(ValueError, match="not in the prompt"):
        generate(dit, "a red circle", ["square"], Capture(concepts=["triangle"]), num_inference_steps=1)


def test_vae_latents_subtract_the_shift_factor():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4, scaling_factor=1.5,
                        shift_factor=0.25).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(vae_latents(vae, x), (vae.encode(x).latent_dist.mean - 0.25) * 1.5)


@pytest.mark.slow
def test_sd3_medium_architecture_runs_every_capture(tmp_path):
    from foundseg.testing import save_random_sd3

    pipe = load_sd(save_random_sd3(tmp_path / "sd3", narrow=True), text_encoder_3=None, tokenizer_3=None)
    assert type(pipe.transformer).__name__ == "SD3Transformer2DModel" and pipe.vae.config.latent_channels == 16
    g = generate(pipe, "a red circle", ["circle"], Capture(concepts=["square"]), num_inference_steps=1, height=64,
                 width=64)
    assert g.image.shape == (64, 64, 3) and g.maps.mean().shape == (1, 1, 4, 4)
    maps = renoise_attention(pipe, np.zeros((64, 64, 3), np.uint8), "a red circle", ["circle"], t=200, size=(64, 64))
    assert maps.mean().shape == (1, 1, 4, 4) and len(maps.per_layer) == 24
    assert extract_features(pipe, np.zeros((64, 64, 3), np.uint8), last=2, size=(64, 64)).shape == (1536 // 8, 4, 4)

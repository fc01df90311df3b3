import numpy as np
import pytest
import torch

from foundseg.clustering import cluster_features, kmeans
from foundseg.diffusion import extract_features, output_layers
from foundseg.eval import cluster_scores
from foundseg.models import load_sd


@pytest.fixture(scope="module")
def pipe(tiny_sd_dir):
    return load_sd(str(tiny_sd_dir))


def test_output_layers_and_features(pipe):
    names = output_layers(pipe.unet)
    assert names == ["up_blocks.0.attentions.0", "up_blocks.0.attentions.1",
                     "up_blocks.1.attentions.0", "up_blocks.1.attentions.1"]
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    f2 = extract_features(pipe, image, t=100, last=2)
    assert f2.shape == (32, 8, 8)  # the last up-block: 32 channels at the latent's 8x8
    f4 = extract_features(pipe, image, t=100, last=4)
    assert f4.shape == (64 + 64 + 32 + 32, 8, 8)  # widths differ: concatenated
    assert torch.equal(extract_features(pipe, image, t=100, last=2), f2)
    assert not torch.equal(extract_features(pipe, image, t=900, last=2), f2)
    with pytest.raises(ValueError, match="last must be between 1 and 4"):
        extract_features(pipe, image, last=9)


def test_kmeans_separates_blobs_and_scores_match_hand_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(50, 2, generator=g) * 0.1, torch.randn(50, 2, generator=g) * 0.1 + 5])
    labels = kmeans(x, 2)
    assert len(set(labels[:50].tolist())) == 1 and labels[0] != labels[-1]
    assert torch.equal(kmeans(x, 2, seed=0), labels)
    # clusters are a relabelling of the truth: perfect scores
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_scores(np.array([5, 5, 3, 3, 9, 9]), truth) == {"miou": 1.0, "purity": 1.0}
    # one cluster for everything: best match IoU 2/6 for one class, 0 for the others; purity 2/6
    r = cluster_scores(np.zeros(6, int), truth)
    assert r["miou"] == pytest.approx(1 / 9) and r["purity"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="k must be"):
        kmeans(x, 0)


def test_cluster_features_upsamples(pipe):
    feats = torch.randn(8, 4, 4)
    labels = cluster_features(feats, 3, size=(16, 16))
    assert labels.shape == (16, 16) and set(labels.unique().tolist()) <= {0, 1, 2}


def test_diffusion_classifier_shares_noise_across_prompts(pipe):
    from foundseg.diffusion import denoising_errors, diffusion_classify

    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    errors = denoising_errors(pipe, image, ["a circle", "a circle", "a star"])
    assert errors.shape == (3,) and errors[0] == errors[1] and errors[0] != errors[2]
    assert diffusion_classify(pipe, image, ["circle", "star"]) == int(errors[[0, 2]].argmin())
    with pytest.raises(ValueError, match="timesteps"):
        denoising_errors(pipe, image, ["a circle"], timesteps=(1000,))


def test_captured_outputs_are_released_even_when_the_body_raises(pipe):
    from foundseg.models import capture_outputs

    blocks = {f"up.{i}": b for i, b in enumerate(pipe.unet.up_blocks)}
    with pytest.raises(RuntimeError, match="stop"):
        with capture_outputs(blocks) as out:
            side = pipe.unet.config.sample_size
            text = pipe.encode_prompt("a red circle", "cpu", 1, False)[0]
            pipe.unet(torch.zeros(1, 4, side, side), 10, encoder_hidden_states=text)
            assert sorted(out) == sorted(blocks)
            raise RuntimeError("stop")
    assert all(not b._forward_hooks for b in pipe.unet.modules())


def test_feature_extraction_leaves_no_hook_after_bad_input(pipe):
    with pytest.raises(ValueError):
        extract_features(pipe, np.zeros((32, 32, 3), np.uint8), t=5000)
    assert all(not m._forward_hooks for m in pipe.unet.modules())
    assert extract_features(pipe, np.zeros((32, 32, 3), np.uint8), last=2).shape[0] == 32

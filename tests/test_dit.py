"""shapes-dit's training: the null-token shortcut is exact, and a tiny run gives a working SD3 pipeline."""
import torch

from foundseg.models.loader import ZOO_DIR
from foundseg.training.dit import NULL_TOKENS, NullTokens, build_transformer, train_dit


def test_one_null_token_with_its_weight_is_the_pipelines_256():
    model = build_transformer(8, 4, 16, 8, dict(layers=2, heads=2, head_dim=8, patch=2)).eval()
    g = torch.Generator().manual_seed(0)
    x, text, pooled = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 16, generator=g), torch.randn(2, 8, generator=g)
    inputs = dict(hidden_states=x, pooled_projections=pooled, timestep=torch.tensor([300.0, 700.0]))
    with torch.no_grad():
        many = model(encoder_hidden_states=torch.cat([text, torch.zeros(2, NULL_TOKENS, 16)], 1), **inputs).sample
        originals = dict(model.attn_processors)
        model.set_attn_processor({n: NullTokens(p) for n, p in originals.items()})
        one = model(encoder_hidden_states=torch.cat([text, torch.zeros(2, 1, 16)], 1), **inputs).sample
        model.set_attn_processor(originals)
        unweighted = model(encoder_hidden_states=torch.cat([text, torch.zeros(2, 1, 16)], 1), **inputs).sample
    torch.testing.assert_close(one, many, atol=1e-5, rtol=1e-5)
    assert (unweighted - many).abs().max() > 1e-3  # without the weight, one token is not 256


def test_a_tiny_training_gives_a_pipeline_that_generates(tmp_path):
    from diffusers import StableDiffusion3Pipeline

    log = train_dit(tmp_path / "shapes-dit", ZOO_DIR / "shapes-clip", ZOO_DIR / "shapes-sd", progress=False,
                    steps=3, pool=64, batch=8, layers=1)
    assert log["steps"] == 3 and log["settings"]["layers"] == 1
    pipe = StableDiffusion3Pipeline.from_pretrained(tmp_path / "shapes-dit", text_encoder_3=None, tokenizer_3=None,
                                                    torch_dtype=torch.float32)  # no T5, as SD3's docs drop it
    assert pipe.transformer.dtype == torch.float32 and pipe.text_encoder_3 is None
    image = pipe("a red circle", num_inference_steps=2, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.shape == (32, 32, 3)

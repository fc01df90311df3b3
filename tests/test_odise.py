import csv

import numpy as np
import pytest
import torch

from foundseg.cli import main
from foundseg.diffusion import ImplicitCaptioner, OdiseConfig, fuse, odise_features
from foundseg.eval.ablation import CLIP_ONLY, run_ablation
from foundseg.heads import seen_labels
from foundseg.heads import OpenVocabHead, predict, segmentation_loss
from foundseg.models import load_clip, load_sd


@pytest.fixture(scope="module")
def pipe(tiny_sd_dir):
    return load_sd(str(tiny_sd_dir))


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_config_checks():
    with pytest.raises(ValueError, match="text must be"):
        OdiseConfig(text="poem")
    with pytest.raises(ValueError, match="at least one"):
        OdiseConfig(vae_encoder=False, vae_decoder=False, unet=False)
    with pytest.raises(ValueError, match="timesteps"):
        OdiseConfig(timesteps=(1000,))
    assert OdiseConfig().key() == OdiseConfig().key() != OdiseConfig(noise=False).key()


def test_every_switch_changes_what_is_extracted(pipe, images):
    full = odise_features(pipe, images, OdiseConfig(text="null"))
    assert {k.split(".")[0] for k in full} == {"vae_encoder", "vae_decoder", "unet"}
    only_vae = odise_features(pipe, images, OdiseConfig(text="null", unet=False))
    assert set(only_vae) == {k for k in full if not k.startswith("unet")}
    picked = odise_features(pipe, images, OdiseConfig(text="null", vae_encoder=False, vae_decoder=False,
                                                      unet_blocks=(1,)))
    assert set(picked) == {"unet.1"}
    clean = odise_features(pipe, images, OdiseConfig(text="null", noise=False))
    assert torch.equal(clean["vae_encoder.0"], full["vae_encoder.0"])
    assert not torch.equal(clean["unet.1"], full["unet.1"])
    captioned = odise_features(pipe, images, OdiseConfig(text="caption"), captions=["a red circle", "a blue star"])
    assert not torch.equal(captioned["unet.1"], full["unet.1"])
    t0 = odise_features(pipe, images, OdiseConfig(text="null", timesteps=(0,)))["unet.1"]
    t5 = odise_features(pipe, images, OdiseConfig(text="null", timesteps=(500,)))["unet.1"]
    both = odise_features(pipe, images, OdiseConfig(text="null", timesteps=(0, 500)))["unet.1"]
    assert torch.allclose(both, (t0 + t5) / 2, atol=1e-6)
    assert fuse(full, (8, 8)).shape[-2:] == (8, 8)
    with pytest.raises(ValueError, match="captions"):
        odise_features(pipe, images, OdiseConfig(text="caption"))
    with pytest.raises(ValueError, match="out of range"):
        odise_features(pipe, images, OdiseConfig(text="null", unet_blocks=(5,)))


def test_implicit_captioner_starts_at_null_text_and_learns(pipe, images):
    cap = ImplicitCaptioner(clip_dim=16, text_dim=32, n_tokens=3)
    null = pipe.encode_prompt([""], "cpu", 1, False)[0]
    emb = torch.randn(2, 16)
    assert torch.equal(cap(null, emb), null.expand(2, -1, -1))  # tanh(0) = 0: the gate starts closed
    feats = odise_features(pipe, images, OdiseConfig(), captioner=cap, clip_image_embeds=emb)
    feats["unet.1"].sum().backward()
    assert cap.gate.grad is not None and cap.gate.grad.abs() > 0


def test_head_learns_a_toy_problem():
    torch.manual_seed(0)
    feats = torch.randn(8, 4, 8, 8)
    labels = (feats[:, :1] > 0).long()[:, 0]  # class 1 where channel 0 is positive, else background
    labels = torch.nn.functional.interpolate(labels[:, None].float(), size=(16, 16))[:, 0].long()
    head = OpenVocabHead(4, 6, hidden=16)
    text = torch.randn(1, 6)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = segmentation_loss(head(feats, text), labels)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 3
    assert (predict(head(feats, text), (16, 16)) == labels).float().mean() > 0.9


def test_seen_labels_hide_unseen_classes():
    masks = np.array([[0, 1, 4, 7]])  # background, circle, diamond (unseen), heart (unseen)
    assert seen_labels(masks).tolist() == [[0, 1, 255, 255]]


def test_ablation_runs_rows_and_caches_features(pipe, tiny_clip_dir, tmp_path):
    clip = load_clip(str(tiny_clip_dir))
    rows = {"null": OdiseConfig(text="null"), "clip": CLIP_ONLY}
    res = run_ablation(pipe, clip, rows, n_train=12, n_test=6, seeds=(0, 1), steps=2, cache_dir=tmp_path,
                       progress=False)
    assert set(res) == {"null", "clip"} and all(len(v) == 2 for r in res.values() for v in r.values())
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert len(cached) == 4  # 2 configurations x (train, test)
    again = run_ablation(pipe, clip, rows, n_train=12, n_test=6, seeds=(0, 1), steps=2, cache_dir=tmp_path,
                         progress=False)
    assert again == res


def test_a_captioner_row_leaves_no_gradient_on_the_pipeline(pipe, tiny_clip_dir):
    clip = load_clip(str(tiny_clip_dir))
    flags = [p.requires_grad for p in pipe.unet.parameters()]
    run_ablation(pipe, clip, {"ic": OdiseConfig(text="implicit")}, n_train=6, n_test=4, seeds=(0,), steps=2,
                 progress=False, feature_batch=2, captioner_batch=3)
    assert all(p.grad is None for p in pipe.unet.parameters())
    assert [p.requires_grad for p in pipe.unet.parameters()] == flags  # the switches are put back


def test_features_cached_for_one_model_are_not_read_for_another(pipe, tiny_clip_dir, tmp_path):
    import copy

    from foundseg.data import batch
    from foundseg.eval.ablation import row_features

    images, _, samples = batch("train", range(4))
    captions = [s.caption for s in samples]
    clip = load_clip(str(tiny_clip_dir))
    first = row_features(pipe, clip, OdiseConfig(text="null"), images, captions, tmp_path)
    retrained = copy.deepcopy(pipe)
    with torch.no_grad():
        next(retrained.unet.parameters()).add_(1.0)
    fresh = row_features(retrained, clip, OdiseConfig(text="null"), images, captions)
    assert not torch.equal(fresh, first)
    assert torch.equal(row_features(retrained, clip, OdiseConfig(text="null"), images, captions, tmp_path), fresh)
    assert len(list(tmp_path.iterdir())) == 2  # one file per model, neither overwritten
    assert torch.equal(row_features(pipe, clip, OdiseConfig(text="null"), images, captions, tmp_path), first)


def test_stored_results_are_read_only_for_the_same_rows_setting_and_weights(pipe, tiny_clip_dir, tmp_path):
    import copy

    clip = load_clip(str(tiny_clip_dir))
    rows = {"null": OdiseConfig(text="null")}
    setting = dict(n_train=8, n_test=4, seeds=(0,), steps=2, progress=False)
    first = run_ablation(pipe, clip, rows, results_dir=tmp_path, **setting)
    stored = next(tmp_path.iterdir())
    stored.write_text(stored.read_text().replace(str(first["null"]["all"][0]), "0.999"))  # marks a read
    assert run_ablation(pipe, clip, rows, results_dir=tmp_path, **setting)["null"]["all"] == [0.999]
    assert run_ablation(pipe, clip, rows, results_dir=tmp_path, **{**setting, "steps": 3})["null"]["all"] != [0.999]
    retrained = copy.deepcopy(pipe)
    with torch.no_grad():
        next(retrained.unet.parameters()).add_(1.0)
    assert run_ablation(retrained, clip, rows, results_dir=tmp_path, **setting)["null"]["all"] != [0.999]
    assert run_ablation(pipe, clip, {"no unet": OdiseConfig(text="null", unet=False)}, results_dir=tmp_path,
                        **setting)["no unet"]["all"] != [0.999]
    assert len(list(tmp_path.iterdir())) == 4  # one file per rows, setting and weights; none overwritten


def test_cli_ablate_from_a_config_file(tmp_path, tiny_clip_dir, tiny_sd_dir, capsys):
    config = tmp_path / "rows.yaml"
    config.write_text("rows:\n  vae only:\n    unet: false\n    text: null\n  san: clip\n")
    out = tmp_path / "ab"
    assert main(["ablate", "--config", str(config), "--n-train", "10", "--n-test", "5", "--seeds", "1", "--steps",
                 "2", "--model", str(tiny_clip_dir), "--sd-model", str(tiny_sd_dir), "--cache", str(tmp_path / "c"),
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "ablation.csv")))
    assert [r["row"] for r in rows] == ["vae only", "san"]
    assert main(["ablate", "--rows", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown --rows ['nope']" in capsys.readouterr().err and not (tmp_path / "x").exists()

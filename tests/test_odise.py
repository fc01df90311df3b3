import csv
import json

import numpy as np
import pytest
import torch

from foundseg.cli import main
from foundseg.diffusion import ImplicitCaptioner, OdiseConfig, fuse, odise_features
from foundseg.experiments.odise_parts import CLIP_ONLY, run_ablation
from foundseg.heads import (MaskClassificationHead, class_probabilities, geometric_ensemble, mask_pooled_probabilities,
                            seen_labels, semantic_inference, set_loss, train_probe)
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


def _toy(n=8, seed=0):
    """Features whose channel 0 marks a square of class 1 (a random position per image), else background."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, 16, 16, dtype=torch.long)
    for i in range(n):
        y, x = torch.randint(0, 8, (2,), generator=g).tolist()
        labels[i, y:y + 6, x:x + 6] = 1
    feats = torch.nn.functional.avg_pool2d(labels[:, None].float(), 2) + 0.1 * torch.randn(n, 1, 8, 8, generator=g)
    return torch.cat([feats, torch.randn(n, 3, 8, 8, generator=g)], 1), labels


def test_mask_head_learns_masks_and_classes_of_a_toy_problem():
    torch.manual_seed(0)
    feats, labels = _toy()
    head = MaskClassificationHead(4, 6, hidden=16, queries=4, layers=1)
    text = torch.randn(1, 6)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = set_loss(*head(feats, text), labels)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 3
    logits, masks = head(feats, text)
    assert (semantic_inference(class_probabilities(logits), masks, (16, 16)) == labels).float().mean() > 0.9


def test_set_loss_ignores_unlabelled_pixels():
    head = MaskClassificationHead(4, 6, hidden=16, queries=4, layers=1)
    feats, labels = _toy(2)
    logits, masks = head(feats, torch.randn(1, 6))
    moved = masks.clone()
    moved[:, :, :3] += 5.0  # predictions on the top rows only (upsampled: rows 0-6 of 16)
    hidden = labels.clone()
    hidden[:, :8] = 255
    assert torch.isclose(set_loss(logits, masks, hidden), set_loss(logits, moved, hidden))
    assert not torch.isclose(set_loss(logits, masks, labels), set_loss(logits, moved, labels))


def test_ensemble_hands_unseen_classes_to_clip_and_keeps_background():
    head = torch.tensor([[[0.2, 0.7, 0.1], [0.9, 0.05, 0.05]]])  # query 0: an object the head calls class 0
    clip = torch.tensor([[[0.05, 0.95], [0.5, 0.5]]])              # CLIP: query 0 is the unseen class 1
    seen = torch.tensor([True, False])
    probs = geometric_ensemble(head, clip, seen, alpha=0.35, beta=0.65)
    assert torch.allclose(probs[..., 0], head[..., 0])                  # background is the head's
    assert torch.allclose(probs.sum(-1), head.sum(-1))                  # the class mass too
    assert probs[0, 0, 2] > probs[0, 0, 1]                              # CLIP's unseen class wins with beta
    assert geometric_ensemble(head, clip, seen, 0.35, 0.35)[0, 0, 2] < probs[0, 0, 2]  # beta > alpha favours it
    with pytest.raises(ValueError, match="clip_probs"):
        geometric_ensemble(head, clip[..., :1], seen)


def test_mask_pooling_reads_clip_inside_each_mask():
    dense = torch.zeros(1, 3, 4, 4)
    dense[0, 0, :, :2] = 1.0  # left half: class 0; right half: class 2
    dense[0, 2, :, 2:] = 1.0
    masks = torch.full((1, 2, 4, 4), -10.0)
    masks[0, 0, :, :2] = 10.0
    masks[0, 1, :, 2:] = 10.0
    probs = mask_pooled_probabilities(dense, masks, torch.eye(3), 50.0)
    assert probs.argmax(-1).tolist() == [[0, 2]]


def test_linear_probe_floor_cannot_beat_a_nonlinear_problem():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(16, 2, 4, 4, generator=g)
    xor = ((feats[:, 0] > 0) ^ (feats[:, 1] > 0)).long()  # no linear boundary separates it
    probe = train_probe(feats, xor, classes=2, seed=0, steps=200, batch=16)
    assert (probe(feats).argmax(1) == xor).float().mean() < 0.75
    linear = (feats[:, 0] > 0).long()
    probe = train_probe(feats, linear, classes=2, seed=0, steps=200, batch=16)
    assert (probe(feats).argmax(1) == linear).float().mean() > 0.95


def test_seen_labels_hide_unseen_classes():
    masks = np.array([[0, 1, 4, 7]])  # background, circle, diamond (unseen), heart (unseen)
    assert seen_labels(masks).tolist() == [[0, 1, 255, 255]]


def test_ablation_runs_rows_and_caches_features(pipe, tiny_clip_dir, tmp_path):
    clip = load_clip(str(tiny_clip_dir))
    rows = {"null": OdiseConfig(text="null"), "clip": CLIP_ONLY}
    res = run_ablation(pipe, clip, rows, n_train=12, n_test=6, seeds=(0, 1), steps=2, captioner_steps=1,
                       cache_dir=tmp_path, progress=False)
    assert set(res["rows"]) == {"null", "clip"}
    assert all(len(v) == 2 for r in res["rows"].values() for variant in r.values() if isinstance(variant, dict)
               for v in variant.values())
    assert 0 < res["floor"]["all"] < 0.5 and res["floor"]["seen"] == res["floor"]["unseen"] == 0.0
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert len(cached) == 4  # 2 configurations x (train, test)
    again = run_ablation(pipe, clip, rows, n_train=12, n_test=6, seeds=(0, 1), steps=2, captioner_steps=1,
                         cache_dir=tmp_path, progress=False)
    assert again == res


def test_a_captioner_row_refuses_more_captioner_steps_than_steps(pipe, tiny_clip_dir):
    with pytest.raises(ValueError, match="captioner_steps must be between 0 and steps"):
        run_ablation(pipe, load_clip(str(tiny_clip_dir)), {"ic": OdiseConfig(text="implicit")}, n_train=4, n_test=2,
                     seeds=(0,), steps=2, captioner_steps=3, progress=False)


def test_a_captioner_row_leaves_no_gradient_on_the_pipeline(pipe, tiny_clip_dir):
    clip = load_clip(str(tiny_clip_dir))
    flags = [p.requires_grad for p in pipe.unet.parameters()]
    run_ablation(pipe, clip, {"ic": OdiseConfig(text="implicit")}, n_train=6, n_test=4, seeds=(0,), steps=2,
                 captioner_steps=1, progress=False, feature_batch=2, captioner_batch=3)
    assert all(p.grad is None for p in pipe.unet.parameters())
    assert [p.requires_grad for p in pipe.unet.parameters()] == flags  # the switches are put back


def test_features_cached_for_one_model_are_not_read_for_another(pipe, tiny_clip_dir, tmp_path):
    import copy

    from foundseg.data import batch
    from foundseg.experiments.odise_parts import row_features

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
    setting = dict(n_train=8, n_test=4, seeds=(0,), steps=2, captioner_steps=1, progress=False)
    first = run_ablation(pipe, clip, rows, results_dir=tmp_path, **setting)
    stored = next(tmp_path.iterdir())
    marked = json.loads(stored.read_text())
    marked["rows"]["null"]["ensemble"]["all"] = [0.999]  # marks a read
    stored.write_text(json.dumps(marked))
    read = lambda res: res["rows"][next(iter(res["rows"]))]["ensemble"]["all"]  # noqa: E731
    assert read(first) != [0.999]
    assert read(run_ablation(pipe, clip, rows, results_dir=tmp_path, **setting)) == [0.999]
    assert read(run_ablation(pipe, clip, rows, results_dir=tmp_path, **{**setting, "steps": 3})) != [0.999]
    retrained = copy.deepcopy(pipe)
    with torch.no_grad():
        next(retrained.unet.parameters()).add_(1.0)
    assert read(run_ablation(retrained, clip, rows, results_dir=tmp_path, **setting)) != [0.999]
    assert read(run_ablation(pipe, clip, {"no unet": OdiseConfig(text="null", unet=False)}, results_dir=tmp_path,
                             **setting)) != [0.999]
    assert len(list(tmp_path.iterdir())) == 4  # one file per rows, setting and weights; none overwritten


def test_cli_ablate_from_a_config_file(tmp_path, tiny_clip_dir, tiny_sd_dir, capsys):
    config = tmp_path / "rows.yaml"
    config.write_text("rows:\n  vae only:\n    unet: false\n    text: null\n  san: clip\n")
    out = tmp_path / "ab"
    assert main(["ablate", "--config", str(config), "--n-train", "10", "--n-test", "5", "--seeds", "1", "--steps",
                 "2", "--captioner-steps", "1", "--model", str(tiny_clip_dir), "--sd-model", str(tiny_sd_dir), "--cache", str(tmp_path / "c"),
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "ablation.csv")))
    assert [(r["row"], r["variant"]) for r in rows][:3] == [("all background", ""), ("vae only", "ensemble"),
                                                          ("vae only", "head")]
    assert {r["row"] for r in rows} == {"all background", "vae only", "san"}
    assert main(["ablate", "--rows", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown --rows ['nope']" in capsys.readouterr().err and not (tmp_path / "x").exists()

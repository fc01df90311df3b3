import hashlib
import json

import pytest

from foundseg.cli import main
from foundseg.models import load_clip, load_sd
from foundseg.training import train_zoo

TINY = dict(clip=dict(steps=3, pool=300, batch=16), vae=dict(steps=3, pool=300, batch=8), unet=dict(steps=3, batch=8),
            dit=dict(steps=3, pool=64, batch=8))


def _digest(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*.safetensors"))}


@pytest.mark.slow
def test_same_seed_same_weights_and_loadable_layout(tmp_path):
    import torch

    threads = torch.get_num_threads()
    logs = train_zoo(tmp_path / "a", seed=3, progress=False, threads=threads + 1, **TINY)
    assert torch.get_num_threads() == threads  # the caller's thread count comes back
    train_zoo(tmp_path / "b", seed=3, progress=False, threads=threads + 1, **TINY)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b and len(a) == 8  # clip; sd's vae, unet, text encoder; dit's vae, transformer, two text encoders
    assert logs["shapes-clip"]["steps"] == 3 and logs["shapes-sd"]["unet"]["steps"] == 3
    assert logs["shapes-dit"]["steps"] == 3
    assert not list((tmp_path / "a").glob(".training-*"))  # nothing half-written left behind
    log = json.loads((tmp_path / "a" / "shapes-sd" / "train_log.json").read_text())
    assert (log["device"], log["threads"], log["torch"]) == ("cpu", threads + 1, torch.__version__)
    assert load_clip(str(tmp_path / "a" / "shapes-clip")).model.config.image_pooling == "cls"
    pipe = load_sd(str(tmp_path / "a" / "shapes-sd"))
    assert (tmp_path / "a" / "shapes-sd" / "tokenizer" / "vocab.json").exists()
    assert not (tmp_path / "a" / "shapes-sd" / "tokenizer" / "tokenizer.json").exists()
    assert pipe.scheduler.config.clip_sample is False and pipe.scheduler.config.steps_offset == 1
    dit = load_sd(str(tmp_path / "a" / "shapes-dit"))
    assert type(dit.transformer).__name__ == "SD3Transformer2DModel" and dit.text_encoder_3 is None
    with pytest.raises(FileExistsError, match="force"):
        train_zoo(tmp_path / "a", seed=4, progress=False, **TINY)  # never replaced by accident
    assert _digest(tmp_path / "a") == a
    train_zoo(tmp_path / "a", seed=4, progress=False, force=True, **TINY)  # retraining replaces the models whole
    assert _digest(tmp_path / "a") != a


@pytest.mark.slow
def test_cli_zoo_train_with_settings_writes_both_models(tmp_path, capsys):
    import yaml

    settings = tmp_path / "tiny.yaml"
    settings.write_text(yaml.safe_dump(TINY))
    assert main(["zoo", "train", "--out", str(tmp_path / "zoo"), "--settings", str(settings), "--no-card"]) == 0
    assert (tmp_path / "zoo" / "shapes-clip" / "model.safetensors").exists()
    assert (tmp_path / "zoo" / "shapes-sd" / "model_index.json").exists()
    assert (tmp_path / "zoo" / "shapes-dit" / "transformer" / "config.json").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("optimizer: {lr: 1}\n")
    assert main(["zoo", "train", "--out", str(tmp_path / "zoo2"), "--settings", str(bad)]) == 2
    assert "may only hold" in capsys.readouterr().err
    assert main(["zoo", "train", "--out", str(tmp_path / "zoo"), "--settings", str(settings), "--no-card"]) == 2
    assert "already holds shapes-clip, shapes-sd, shapes-dit; pass force=True (--force)" in capsys.readouterr().err


def test_clip_pooling_setting_is_recorded_and_checked(tmp_path):
    from foundseg.models import default_pooling
    from foundseg.training import train_clip

    train_clip(tmp_path / "cls", steps=1, pool=50, batch=8, progress=False, pooling="cls")
    assert default_pooling(load_clip(str(tmp_path / "cls")).model) == "cls"
    with pytest.raises(ValueError, match="pooling"):
        train_clip(tmp_path / "bad", steps=1, pool=50, batch=8, progress=False, pooling="max")
    with pytest.raises(ValueError, match="window_anchor"):
        train_clip(tmp_path / "bad", steps=1, pool=50, batch=8, progress=False, window_anchor="corner")
    with pytest.raises(ValueError, match="window_sizes"):
        train_clip(tmp_path / "bad", steps=1, pool=50, batch=8, progress=False, window_sizes=(3, 20))


def test_a_caption_is_positive_for_exactly_the_images_holding_all_it_names():
    from foundseg.training.clip import _positives

    images = [[("circle", "red"), ("square", "blue")], [("circle", "blue")], [("star", "green")]]
    captions = [[("circle", None)], [("circle", "blue")], [("circle", "red"), ("square", None)], [("star", "red")]]
    assert _positives(captions, images).tolist() == [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("anchor", ["point", "centroid"])
def test_a_region_window_fits_the_grid_and_overlaps_every_shape_its_caption_names(anchor):
    import numpy as np

    from foundseg.data import sample
    from foundseg.training.clip import _region

    rng = np.random.default_rng(0)
    for i in range(60):
        s = sample("train", i, size=64)
        window, inside = _region(s, rng, 8, 8, (1, 3), anchor)
        grid = window.reshape(8, 8).numpy()
        side = int(grid.any(1).sum())
        assert 1 <= side <= 3 and grid.sum() == side * side
        pixels = np.kron(grid, np.ones((8, 8), bool))
        shown = {(o.shape, o.colour): s.mask == o.class_id for o in s.objects}
        assert inside and all((shown[obj] & pixels).any() for obj in inside)


def test_the_word_loss_finds_every_shape_word_in_caption_order(tmp_path):
    import numpy as np
    import torch
    from transformers import CLIPTokenizer

    from foundseg.data import CLASSES, COLOURS
    from foundseg.data.vocab import write_tokenizer
    from foundseg.training.clip import _phrase, _shape_word_ids

    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(tmp_path))
    rng = np.random.default_rng(0)
    for k in range(40):
        reqs = [(CLASSES[(k + j) % len(CLASSES)], [None, *COLOURS][(k * j) % (len(COLOURS) + 1)]) for j in range(1 + k % 3)]
        ids = tokenizer(_phrase(reqs, rng), return_tensors="pt").input_ids[0]
        found = ids[torch.isin(ids, _shape_word_ids(tokenizer))]
        assert tokenizer.convert_ids_to_tokens(found.tolist()) == [f"{shape}</w>" for shape, _ in reqs]


def test_cli_help_lists_zoo_commands(capsys):
    with pytest.raises(SystemExit):
        main(["zoo", "--help"])
    out = capsys.readouterr().out
    assert "train" in out and "card" in out

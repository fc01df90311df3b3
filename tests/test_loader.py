import shutil

import pytest
import torch

from foundseg.config import default_model
from foundseg.models import CLIP, ModelUnavailableError, load, load_clip, load_sd
from foundseg.models.loader import ZOO_DIR


def test_directories_load_through_from_pretrained(tiny_clip_dir, tiny_sd_dir):
    clip = load_clip(str(tiny_clip_dir))
    assert isinstance(clip, CLIP) and not clip.model.training
    pipe = load_sd(str(tiny_sd_dir))
    assert pipe.unet.dtype == torch.float32 and pipe.safety_checker is None
    assert type(load(str(tiny_sd_dir))).__name__ == "StableDiffusionPipeline"
    assert isinstance(load(str(tiny_clip_dir)), CLIP)


def test_unknown_names_and_kinds(tiny_clip_dir):
    with pytest.raises(ValueError, match="unknown model name 'shapes-vit'"):
        load_clip("shapes-vit")
    with pytest.raises(ValueError, match="is a Stable Diffusion pipeline; a CLIP model is needed"):
        load_clip("shapes-sd")
    with pytest.raises(ValueError, match="kind must be given"):
        load("someone/some-model")
    with pytest.raises(ValueError, match="name must be"):
        load_clip("")


def test_a_directory_of_the_wrong_kind_or_a_missing_path_is_named_as_such(tiny_clip_dir, tiny_sd_dir, tmp_path):
    with pytest.raises(ValueError, match="is a Stable Diffusion pipeline; a CLIP model is needed"):
        load_clip(str(tiny_sd_dir))
    with pytest.raises(ValueError, match="is a CLIP model; a Stable Diffusion pipeline is needed"):
        load_sd(str(tiny_clip_dir))
    for path in ("./clipcopyy", str(tmp_path / "missing"), "~/no-such-model"):
        with pytest.raises(FileNotFoundError, match="does not exist"):  # never looked up on the hub
            load_clip(path)


def test_offline_hub_id_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        load_clip("openai/clip-vit-base-patch16")
    msg = str(err.value)
    assert "openai/clip-vit-base-patch16" in msg and "hf download" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_pickle_checkpoint_is_refused(tiny_clip_dir, tmp_path):
    broken = shutil.copytree(tiny_clip_dir, tmp_path / "pickled")
    (broken / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(1)}, broken / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pickle checkpoint pytorch_model.bin; foundseg loads safetensors only"):
        load_clip(str(broken))


def test_truncated_and_corrupt_safetensors(tiny_clip_dir, tiny_sd_dir, tmp_path):
    broken = shutil.copytree(tiny_clip_dir, tmp_path / "truncated")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated weight file"):
        load_clip(str(broken))
    garbage = shutil.copytree(tiny_sd_dir, tmp_path / "garbage")
    (garbage / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="component 'unet'.*corrupt or truncated"):
        load_sd(str(garbage))


def test_missing_component(tiny_sd_dir, tmp_path):
    broken = shutil.copytree(tiny_sd_dir, tmp_path / "missing")
    shutil.rmtree(broken / "vae")
    with pytest.raises(ValueError, match="component 'vae' listed in model_index.json is missing"):
        load_sd(str(broken))
    with pytest.raises(ValueError, match="missing model_index.json"):
        load_sd(str(broken / "unet"))


def test_scale_switch(monkeypatch):
    monkeypatch.setenv("FOUNDSEG_SCALE", "full")
    assert default_model("clip") == "openai/clip-vit-base-patch16"
    monkeypatch.setenv("FOUNDSEG_SCALE", "shapes")
    assert default_model("sd") == "shapes-sd"
    monkeypatch.setenv("FOUNDSEG_SCALE", "huge")
    with pytest.raises(ValueError, match="FOUNDSEG_SCALE"):
        default_model("clip")


def test_a_scale_is_defined_once_and_overridden_from_the_environment(monkeypatch):
    from foundseg.config import COUNTS, SCALES, current_scale

    assert all(set(s.counts) == set(COUNTS) for s in SCALES.values())
    monkeypatch.setenv("FOUNDSEG_SCALE", "full")
    monkeypatch.setenv("FOUNDSEG_CLIP_MODEL", "/mirror/clip")
    monkeypatch.setenv("FOUNDSEG_MAX_COUNT", "3")
    full = current_scale()
    assert (full.clip_model, full.sd_model) == ("/mirror/clip", SCALES["full"].sd_model)
    assert (full.clip_size, full.sd_size) == (224, 512)  # the models' own resolutions
    assert all(full.count(name) <= 3 for name in COUNTS)
    assert default_model("clip") == "/mirror/clip"
    with pytest.raises(ValueError, match="name must be one of"):
        full.count("epochs")
    monkeypatch.setenv("FOUNDSEG_MAX_COUNT", "many")
    with pytest.raises(ValueError, match="FOUNDSEG_MAX_COUNT"):
        current_scale()


def test_shipped_zoo_fits_the_size_budget():
    files = [p for p in ZOO_DIR.rglob("*") if p.is_file()]
    assert {"shapes-clip", "shapes-sd", "shapes-dit"} <= {p.name for p in ZOO_DIR.iterdir()}
    assert sum(p.stat().st_size for p in files) <= 30 * 2 ** 20

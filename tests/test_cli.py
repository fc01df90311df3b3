import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from foundseg.cli import main
from foundseg.data import CLASSES, sample


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(sample("test", 2).image).save(path)
    return path


def test_cam_writes_png_npz_json_and_refuses_to_overwrite(tmp_path, image_file, tiny_clip_dir):
    out = tmp_path / "cam"
    args = ["cam", str(image_file), "--classes", "circle", "square", "--model", str(tiny_clip_dir), "--out", str(out)]
    assert main(args) == 0
    maps = np.load(out / "cam.npz")["maps"]
    assert maps.shape == (2, 32, 32) and (out / "cam.png").stat().st_size > 0
    assert json.loads((out / "cam.json").read_text())["classes"] == ["circle", "square"]
    with pytest.raises(SystemExit, match="pass --force"):
        main(args)
    assert main(args + ["--force", "--dense", "--device", "cpu"]) == 0
    assert json.loads((out / "cam.json").read_text())["method"] == "dense_clip"


def test_attention_generate_and_renoise(tmp_path, image_file, tiny_sd_dir):
    gen = tmp_path / "gen"
    assert main(["attention", "--prompt", "a red circle", "--word", "circle", "--steps", "3",
                 "--model", str(tiny_sd_dir), "--out", str(gen)]) == 0
    assert (gen / "generated.png").exists() and np.load(gen / "attention.npz")["mean"].shape == (1, 32, 32)
    again = tmp_path / "renoise"
    assert main(["attention", "--prompt", "a red circle", "--word", "red", "circle", "--image", str(image_file),
                 "--t", "200", "--model", str(tiny_sd_dir), "--out", str(again)]) == 0
    meta = json.loads((again / "attention.json").read_text())
    assert meta["mode"] == "renoise" and meta["t"] == 200 and len(meta["layers"]) == 7


def test_features(tmp_path, image_file, tiny_sd_dir):
    out = tmp_path / "feat"
    assert main(["features", str(image_file), "--last", "2", "--k", "3", "--model", str(tiny_sd_dir),
                 "--out", str(out)]) == 0
    data = np.load(out / "features.npz")
    assert data["features"].shape == (32, 8, 8) and set(np.unique(data["clusters"])) <= {0, 1, 2}
    # the default (six layers, as in the paper) falls back to all layers of a UNet with fewer
    assert main(["features", str(image_file), "--model", "shapes-sd", "--out", str(out), "--force"]) == 0
    assert np.load(out / "features.npz")["features"].ndim == 3


def _write_folder_dataset(root: Path, n: int = 6):
    (root / "img").mkdir(parents=True)
    (root / "lab").mkdir()
    for i in range(n):
        s = sample("val", i)
        Image.fromarray(s.image).save(root / "img" / f"{i:03d}.png")
        Image.fromarray(s.mask).save(root / "lab" / f"{i:03d}.png")
    (root / "classes.txt").write_text("\n".join(["background", *CLASSES]))
    return ["--dataset", "folder", "--images", str(root / "img"), "--labels", str(root / "lab"),
            "--classes", str(root / "classes.txt"), "--image-suffix", ".png"]


def test_eval_on_a_folder_dataset(tmp_path, tiny_clip_dir):
    spec = _write_folder_dataset(tmp_path / "ds")
    out = tmp_path / "ev"
    assert main(["eval", *spec, "--method", "gradcam", "--model", str(tiny_clip_dir), "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["images"] == 6 and 0 <= result["mIoU"] <= 1 and "circle" in result["per_class"]


@pytest.mark.slow
def test_two_processes_give_exactly_the_single_process_metrics(tmp_path, tiny_clip_dir):
    spec = _write_folder_dataset(tmp_path / "ds", n=7)  # odd: the shards differ in size
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["eval", *spec, "--method", "dense-clip", "--model", str(tiny_clip_dir)]
    assert main(common + ["--out", str(one)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # torchrun, the launcher accelerate uses for several GPUs; without a GPU the processes form a gloo group
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "-m", "foundseg", *common, "--out", str(two)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = json.loads((one / "metrics.json").read_text()), json.loads((two / "metrics.json").read_text())
    assert b["processes"] == 2 and a["processes"] == 1
    for key in ("mIoU", "fwIoU", "mAcc", "pAcc", "per_class", "images"):
        assert json.dumps(a[key]) == json.dumps(b[key]), key  # NaN (classes absent here) compare as text


def test_a_huge_photo_is_resized_to_the_models_input(tmp_path, tiny_clip_dir, tiny_sd_dir):
    photo = tmp_path / "huge.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8000, 8000, 3), dtype=np.uint8)).save(photo)
    assert main(["cam", str(photo), "--classes", "circle", "--model", str(tiny_clip_dir), "--out", str(tmp_path / "c")]) == 0
    assert np.load(tmp_path / "c" / "cam.npz")["maps"].shape == (1, 32, 32)  # the tiny CLIP's 32 px input
    assert main(["attention", "--prompt", "a red circle", "--word", "circle", "--image", str(photo), "--size", "64", "48",
                 "--model", str(tiny_sd_dir), "--out", str(tmp_path / "a")]) == 0
    assert np.load(tmp_path / "a" / "attention.npz")["mean"].shape == (1, 64, 48)

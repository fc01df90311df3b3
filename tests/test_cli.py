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


def test_cam_writes_png_npz_json_and_refuses_to_overwrite(tmp_path, image_file, tiny_clip_dir, capsys):
    out = tmp_path / "cam"
    args = ["cam", str(image_file), "--classes", "circle", "square", "--model", str(tiny_clip_dir), "--out", str(out)]
    assert main(args) == 0
    maps = np.load(out / "cam.npz")["maps"]
    assert maps.shape == (2, 32, 32) and (out / "cam.png").stat().st_size > 0
    assert json.loads((out / "cam.json").read_text())["classes"] == ["circle", "square"]
    assert main(args) == 2
    assert "pass --force to overwrite" in capsys.readouterr().err
    assert main(args + ["--force", "--dense", "--device", "cpu"]) == 0
    assert json.loads((out / "cam.json").read_text())["method"] == "dense_clip"


def test_cam_over_several_images_writes_each_images_maps(tmp_path, image_file, tiny_clip_dir):
    second = tmp_path / "other.png"
    Image.fromarray(sample("test", 5).image).save(second)
    common = ["--classes", "circle", "square", "--model", str(tiny_clip_dir)]
    assert main(["cam", str(image_file), str(second), *common, "--out", str(tmp_path / "both")]) == 0
    assert main(["cam", str(second), *common, "--out", str(tmp_path / "alone")]) == 0
    both, alone = np.load(tmp_path / "both" / "other-cam.npz"), np.load(tmp_path / "alone" / "cam.npz")
    assert (tmp_path / "both" / "scene-cam.png").exists() and np.abs(both["maps"] - alone["maps"]).max() <= 1e-5
    scores = json.loads((tmp_path / "both" / "cam.json").read_text())["scores"]
    assert list(scores) == [str(image_file), str(second)] and len(scores[str(second)]) == 2


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
    # a diffusion transformer: its joint blocks' image tokens, on its patch grid
    assert main(["features", str(image_file), "--model", "shapes-dit", "--k", "3", "--out", str(out), "--force"]) == 0
    assert np.load(out / "features.npz")["features"].shape == (128, 8, 8)  # 4 blocks of 128 channels: their mean


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


def _run(argv, capsys):
    """Exit status and stderr lines of one command (argparse's own errors exit through SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_bad_inputs_get_one_line_naming_the_problem_and_leave_nothing(tmp_path, image_file, tiny_clip_dir,
                                                                        tiny_sd_dir, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    folder = _write_folder_dataset(tmp_path / "ds")
    out = str(tmp_path / "out")
    cam = ["cam", str(image_file), "--classes", "circle", "--out", out]
    attention = ["attention", "--prompt", "a red circle", "--word", "circle", "--model", str(tiny_sd_dir), "--out", out]
    features = ["features", str(image_file), "--model", str(tiny_sd_dir), "--out", out]
    cases = [
        (cam + ["--model", "./clipcopyy"], "foundseg cam: model directory './clipcopyy' does not exist"),
        (cam + ["--model", str(tiny_sd_dir)], "is a Stable Diffusion pipeline; a CLIP model is needed here"),
        (cam + ["--model", "shapes-vit"], "unknown model name 'shapes-vit'"),
        (["cam", str(tmp_path / "none.png"), "--classes", "circle", "--out", out], "none.png"),
        # the image is read before any model loads: a bad image path is reported, not the missing model
        (["cam", str(tmp_path / "none.png"), "--classes", "circle", "--model", "./clipcopyy", "--out", out],
         "IMAGE: no such file"),
        (cam[:-1] + [str(a_file)], f"--out {a_file} is a file; name a directory"),
        (["eval", *folder[:-4], *folder[-2:], "--method", "disc", "--out", out], "foundseg eval: --dataset folder needs --classes"),
        (["eval", *folder, "--method", "disc", "--limit", "-3", "--out", out], "argument --limit: must be at least 1, got -3"),
        (["eval", *folder, "--method", "disc", "--limit", "0", "--out", out], "argument --limit: must be at least 1, got 0"),
        (attention + ["--steps", "0"], "argument --steps: must be at least 1, got 0"),
        (attention + ["--image", str(image_file), "--t", "-5"], "argument --t: must be a timestep from 0"),
        (attention + ["--image", str(image_file), "--t", "5000"], "--t 5000: this model's timesteps run from 0 to 999"),
        (attention[:4] + ["dog"] + attention[5:], "word 'dog' is not in the prompt"),
        (features + ["--last", "0"], "argument --last: must be at least 1, got 0"),
        (features + ["--last", "40"], "--last 40: this denoiser has"),
        (["zoo", "card", str(tmp_path)], "holds no trained shapes-clip, shapes-sd"),
    ]
    for argv, message in cases:
        code, err = _run(argv, capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("foundseg ") and message in err[0], (argv, err)
        assert not (tmp_path / "out").exists(), argv  # nothing written, nothing left behind


def test_a_failure_after_loading_leaves_no_partial_output_and_debug_shows_the_traceback(tmp_path, image_file,
                                                                                         tiny_sd_dir, capsys):
    argv = ["attention", "--prompt", "a red circle", "--word", "dog", "--model", str(tiny_sd_dir),
            "--out", str(tmp_path / "out")]
    (tmp_path / "out").mkdir()
    assert _run(argv, capsys)[0] == 2
    assert list((tmp_path / "out").iterdir()) == []  # an existing --out stays, empty
    with pytest.raises(ValueError, match="not in the prompt"):
        main(argv + ["--debug"])


def test_cam_warns_about_unknown_words_and_writes_scores_beside_the_maps(tmp_path, image_file, capsys):
    out = tmp_path / "cam"
    code, err = _run(["cam", str(image_file), "--classes", "circle", "cat", "--joint", "--out", str(out)], capsys)
    assert code == 0 and len(err) == 1 and "warning: class_names: 'cat' is unknown" in err[0]
    meta = json.loads((out / "cam.json").read_text())
    assert meta["normalise"] == "joint" and len(meta["scores"]) == 2
    maps = np.load(out / "cam.npz")
    assert np.allclose(maps["scores"], meta["scores"], atol=1e-6) and maps["maps"].max() <= 1


def test_eval_metrics_are_valid_json_with_the_reason_for_nulls(tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["eval", "--dataset", "shapes", "--method", "disc", "--limit", "2", "--out", str(out)]) == 0
    text = (out / "metrics.json").read_text()
    result = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert result["per_class"]["circle"] is None and "neither the ground truth nor the predictions" in result["null"]


def _console(argv, tmp_path):
    """The installed ``foundseg`` console script run on ``argv`` as a user types it (without the test run's
    settings that quieten the libraries)."""
    script = Path(sys.executable).with_name("foundseg")
    quiet = {"TQDM_DISABLE", "TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"}
    return subprocess.run([str(script), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={k: v for k, v in os.environ.items() if k not in quiet})


@pytest.mark.slow
def test_the_console_script_refuses_ignored_options_and_bad_configs_in_one_line(tmp_path, image_file):
    broken = tmp_path / "rows.yaml"
    broken.write_text("rows:\n  a: {text: null}\n  b: [unclosed\n")
    out = str(tmp_path / "out")
    cases = [
        (["attention", "--prompt", "a red circle", "--word", "circle", "--t", "500", "--out", out],
         "--t has no effect without --image"),
        (["attention", "--prompt", "a red circle", "--word", "circle", "--image", str(image_file), "--steps", "5",
          "--out", out], "--steps has no effect with --image"),
        (["cam", str(image_file), "--classes", "circle", "--dense", "--joint", "--out", out],
         "--joint has no effect with --dense"),
        (["eval", "--dataset", "shapes", "--method", "disc", "--root", "VOC", "--model", "shapes-clip", "--out", out],
         "--root and --model have no effect with --dataset shapes --method disc"),
        (["ablate", "--config", str(broken), "--out", out], f"--config {broken}, line 4: not valid YAML or JSON"),
        (["ablate", "--config", str(broken), "--rows", "w/o (IC & UNet)", "--out", out], "--rows has no effect"),
        (["cam", str(image_file), "--classes", "circle", "--model", "shapes-vit", "--out", out],
         "unknown model name 'shapes-vit'"),
    ]
    for argv, message in cases:
        run = _console(argv, tmp_path)
        err = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(err) == 1 and message in err[0] and not run.stdout, (argv, run.stderr)
        assert not (tmp_path / "out").exists(), argv


@pytest.mark.slow
def test_the_console_script_loads_models_quietly(tmp_path, image_file):
    """Loading shipped models prints nothing on stderr: no library warnings, no loading bars (--debug shows
    them)."""
    run = _console(["features", str(image_file), "--model", "shapes-sd", "--k", "3", "--out", "f"], tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.startswith("wrote ") and (tmp_path / "f" / "features.npz").exists()
    run = _console(["cam", str(image_file), "--classes", "circle", "--out", "c"], tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    loud = _console(["cam", str(image_file), "--classes", "circle", "--out", "d", "--debug"], tmp_path)
    assert loud.returncode == 0 and ("Loading" in loud.stderr or "torchvision" in loud.stderr), loud.stderr

"""The evidence chapter's reading of per-zoo measurements: verdicts, labels, and the stored results."""
import importlib.util
import json
from pathlib import Path

import pytest

from foundseg.experiments.across_zoos import CLIP_ONLY, IC, METRICS, NULL, across_zoos, conclusions


def zoo(gradcam=0.47, captioner_gain=0.0):
    """One zoo's measurements, shaped as evidence/zoos.py's measure_chapters returns them after a JSON round trip."""
    return {
        "gradcam": {"single template": gradcam, "background prompts": 0.45, "template ensemble": 0.46,
                    "ensemble + synonyms": 0.35, "bare class name": 0.43},
        "disc": 0.25, "by_layer": [0.18, 0.17, 0.32, 0.48], "last_step": 0.6,
        "renoise_generated": {"None": 0.6, "0": 0.6, "200": 0.58, "800": 0.38},
        "renoise_test_caption": {"None": 0.59, "0": 0.59, "200": 0.57, "800": 0.3},
        "renoise_test_word": {"None": 0.5, "0": 0.5, "200": 0.49, "800": 0.3},
        "denoise_generated": {str(k): 0.5 + k / 100 for k in range(1, 11)},
        "kmeans_oracle_k": {"None": 0.5, "0": 0.5, "200": 0.45, "800": 0.3},
        "kmeans_auto_k": {"None": 0.4, "0": 0.4, "200": 0.38, "800": 0.25},
        "odise_ablation": {f"{IC} | ensemble": {"all_mean": 0.52 + captioner_gain},
                           f"{IC} | head": {"all_mean": 0.42}, f"{NULL} | ensemble": {"all_mean": 0.52},
                           f"{CLIP_ONLY} | ensemble": {"all_mean": 0.6}, "all background": {"all_mean": 0.1}},
        "classifier_top1": {"clip": 0.9, "diffusion": 0.5},
    }


def test_a_claim_is_labelled_by_the_zoos_it_holds_on():
    zoos = {"seed 0 (shipped)": zoo(captioner_gain=0.05), "seed 1": zoo(), "seed 2": zoo()}
    text = across_zoos(zoos, "ch4")
    assert "implicit captioner adds more than 0.02 mIoU over the null text\n    holds on some (1 of 3: seed 0 " \
           "(shipped))" in text
    assert "CLIP-only head beats full ODISE\n    holds on every zoo (3 of 3)" in text
    assert "CLIP ensemble adds more than 0.02 mIoU to full ODISE\n    holds on every zoo (3 of 3)" in text
    assert "ch2:" not in text and "Grad-CAM" not in text  # only the chapter's own numbers and claims


def test_zoos_measured_before_a_chapters_protocol_are_named_not_mixed_in():
    old = zoo()
    del old["odise_ablation"]
    text = across_zoos({"seed 0 (shipped)": zoo(), "seed 1": old}, "ch4")
    assert text.splitlines()[0] == "not measured with this chapter's protocol yet: seed 1"
    assert text.splitlines()[1].split() == ["seed", "0", "mean", "spread"]
    assert "holds on every zoo (1 of 1)" in text
    assert "seed 1" in across_zoos({"seed 0 (shipped)": zoo(), "seed 1": old}, "ch2")  # other chapters keep it


def test_the_table_gives_each_zoo_its_mean_and_spread():
    zoos = {"seed 0 (shipped)": zoo(gradcam=0.5), "seed 1": zoo(gradcam=0.4)}
    lines = across_zoos(zoos, "ch2").splitlines()
    assert lines[0].split() == ["seed", "0", "seed", "1", "mean", "spread"]
    assert lines[1].split()[-4:] == ["0.500", "0.400", "0.450", "0.100"]
    assert len(lines) == 1 + len(METRICS["ch2"]) + 2 * 3  # header, numbers, three claims on two lines each
    assert "holds on no zoo" not in across_zoos({"seed 0": zoo(gradcam=0.5)}, "ch2")
    assert "beats the centred disc by 0.05 mIoU or more\n    holds on no zoo" in across_zoos({"s": zoo(0.26)}, "ch2")


def test_denoising_again_is_judged_at_its_last_step_not_the_largest_string():
    z = zoo()
    z["denoise_generated"] = {str(k): (0.6 if k == 9 else 0.4 if k == 10 else 0.5) for k in range(1, 11)}
    assert not conclusions(z)["ch3: denoising again sharpens generated images' maps (last step above first)"]


def test_an_unknown_chapter_is_refused():
    with pytest.raises(ValueError, match="chapter"):
        across_zoos({"seed 0": zoo()}, "ch9")


def load_zoos_script(monkeypatch, tmp_path):
    """evidence/zoos.py as a module, writing under ``tmp_path``."""
    path = Path(__file__).resolve().parents[1] / "evidence" / "zoos.py"
    spec = importlib.util.spec_from_file_location("evidence_zoos", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "OUT", tmp_path / "evidence.json")
    monkeypatch.setattr(script, "MODELS", tmp_path / "models")
    return script


def test_stored_results_merge_and_leave_nothing_half_written(tmp_path, monkeypatch):
    script = load_zoos_script(monkeypatch, tmp_path)
    script.store("zoos", "seed 1", {"disc": 0.25})
    script.store("controls", "control-no-word", {"gradcam_miou": 0.3})
    script.store("zoos", "seed 2", {"disc": 0.27})
    stored = json.loads((tmp_path / "evidence.json").read_text())
    assert set(stored["zoos"]) == {"seed 1", "seed 2"} and stored["controls"]["control-no-word"]["gradcam_miou"] == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence.json", "evidence.lock"]


def test_a_stopped_training_resumes_at_the_model_it_stopped_in(tmp_path, monkeypatch):
    import foundseg.training

    script = load_zoos_script(monkeypatch, tmp_path)
    trained = []

    def fake_clip(out_dir, seed, *args, **kwargs):
        trained.append(("clip", seed))
        Path(out_dir).mkdir()
        return {"steps": 1}

    def stopped_sd(out_dir, *args, **kwargs):
        Path(out_dir).mkdir()
        raise KeyboardInterrupt  # stopped halfway through

    monkeypatch.setattr(foundseg.training, "train_clip", fake_clip)
    monkeypatch.setattr(foundseg.training, "train_sd", stopped_sd)
    with pytest.raises(KeyboardInterrupt):
        script.train_missing(1, [1], controls=False)
    zoo = tmp_path / "models" / "seed-1"
    assert (zoo / "shapes-clip" / "train_log.json").exists() and not (zoo / "shapes-sd").exists()

    monkeypatch.setattr(foundseg.training, "train_sd", lambda out_dir, *a, **k: Path(out_dir).mkdir() or {"unet": {}})
    script.train_missing(1, [1], controls=False)
    assert trained == [("clip", 1)]  # the clip was not trained again
    assert sorted(p.name for p in zoo.iterdir()) == ["shapes-clip", "shapes-sd"]  # no temporary left


def test_a_chapter_opened_alone_says_where_the_measurements_are(tmp_path):
    from foundseg.experiments.across_zoos import read_evidence

    evidence = read_evidence(tmp_path / "data" / "evidence.json")  # no book/data beside a chapter in Colab
    assert evidence == {}
    assert "book/data/evidence.json" in across_zoos(evidence.get("zoos", {}), "ch4")

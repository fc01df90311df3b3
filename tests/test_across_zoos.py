"""The chapters' reading of per-zoo measurements (numbers, verdicts) and how evidence/zoos.py stores them."""
import importlib.util
import json
from pathlib import Path

import pytest

from foundseg.experiments.across_zoos import CLIP_ONLY, IC, METRICS, NO_UNET, NO_VAE, NULL
from foundseg.experiments.verdicts import chapter_verdicts
from foundseg.models.loader import ZOO_DIR


def seeds(mean, spread=0.01):
    """One ablation row as odise_parts.summarise stores it: the mean over three head seeds and each seed's value."""
    values = [mean - spread, mean, mean + spread]
    return {"all_mean": mean, "all_seeds": values, "unseen_mean": mean, "unseen_seeds": values}


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
        "odise_ablation": {f"{IC} | ensemble": seeds(0.52 + captioner_gain), f"{IC} | head": seeds(0.42),
                           f"{NULL} | ensemble": seeds(0.52), f"{CLIP_ONLY} | ensemble": seeds(0.6),
                           f"{NO_UNET} | ensemble": seeds(0.45), f"{NO_VAE} | ensemble": seeds(0.5),
                           "all background": seeds(0.1)},
        "classifier_top1": {"clip": 0.9, "diffusion": 0.5},
    }


def test_a_chapter_prints_its_numbers_then_each_claim_with_its_verdict():
    zoos = {"seed 0 (shipped)": zoo(captioner_gain=0.05), "seed 1": zoo(), "seed 2": zoo()}
    text = chapter_verdicts(zoos, "ch4")
    assert "- the implicit captioner adds little: ODISE not above ODISE w/o IC" in text
    assert "    holds (zoo by zoo: 2 of 3); a − b +0.017, within the spread" in text  # seed 0's captioner adds 0.05
    assert "- ODISE trails a model on CLIP alone: CLIP features only above ODISE\n    holds (zoo by zoo: 3 of 3)" in text
    assert "Grad-CAM" not in text  # only the chapter's own numbers and claims
    assert max(len(line) for line in text.splitlines()) <= 72


def test_zoos_measured_before_a_chapters_protocol_are_named_not_mixed_in():
    old = zoo()
    del old["odise_ablation"]
    text = chapter_verdicts({"seed 0 (shipped)": zoo(), "seed 1": old}, "ch4")
    assert text.splitlines()[0] == "not measured with this chapter's protocol yet: seed 1"
    assert text.splitlines()[1].split() == ["seed", "0", "mean", "spread"]
    assert "holds (zoo by zoo: 1 of 1); a − b +0.100, beyond the spread of the head seeds, 1 zoo" in " ".join(text.split())
    assert "seed 1" in chapter_verdicts({"seed 0 (shipped)": zoo(), "seed 1": old}, "ch2")  # other chapters keep it


def test_the_table_gives_each_zoo_its_mean_and_spread():
    zoos = {"seed 0 (shipped)": zoo(gradcam=0.5), "seed 1": zoo(gradcam=0.4)}
    lines = chapter_verdicts(zoos, "ch2").splitlines()
    assert lines[0].split() == ["seed", "0", "seed", "1", "mean", "spread"]
    assert lines[1].split()[-4:] == ["0.500", "0.400", "0.450", "0.100"]
    assert "Grad-CAM of CLIP finds the named object: above a centred disc\n    holds (zoo by zoo: 2 of 2)" in \
        "\n".join(lines)
    low = chapter_verdicts({"s": zoo(0.24)}, "ch2")
    assert "above a centred disc\n    does not hold (zoo by zoo: 0 of 1); a − b -0.010" in low


def test_denoising_again_is_judged_at_its_last_step_not_the_largest_string():
    z = zoo()
    z["denoise_generated"] = {str(k): (0.6 if k == 9 else 0.4 if k == 10 else 0.5) for k in range(1, 11)}
    text = chapter_verdicts({"s": z}, "ch3")
    assert "the last step above the first does not hold (zoo by zoo: 0 of 1); a − b -0.100" in " ".join(text.split())


def test_an_unknown_chapter_is_refused():
    with pytest.raises(ValueError, match="chapter"):
        chapter_verdicts({"seed 0": zoo()}, "ch9")


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
        script.train_missing(1, [1], controls=False, dit_seeds=())
    zoo = tmp_path / "models" / "seed-1"
    assert (zoo / "shapes-clip" / "train_log.json").exists() and not (zoo / "shapes-sd").exists()

    monkeypatch.setattr(foundseg.training, "train_sd", lambda out_dir, *a, **k: Path(out_dir).mkdir() or {"unet": {}})
    script.train_missing(1, [1], controls=False, dit_seeds=())
    assert trained == [("clip", 1)]  # the clip was not trained again
    assert sorted(p.name for p in zoo.iterdir()) == ["shapes-clip", "shapes-sd"]  # no temporary left

    monkeypatch.setattr(foundseg.training, "train_dit",
                        lambda out_dir, clip_dir, sd_dir, seed, *a: trained.append(("dit", seed, Path(clip_dir).parent))
                        or Path(out_dir).mkdir() or {})
    script.train_missing(1, [], controls=False, dit_seeds=[2])
    assert trained[-1] == ("dit", 2, ZOO_DIR)  # another shapes-dit seed on the shipped CLIP and autoencoder
    assert (tmp_path / "models" / "dit-seed-2" / "shapes-dit" / "train_log.json").exists()


def test_a_chapter_opened_alone_says_where_the_measurements_are(tmp_path):
    from foundseg.experiments.across_zoos import read_evidence

    evidence = read_evidence(tmp_path / "data" / "evidence.json")  # no book/data beside a chapter in Colab
    assert evidence == {}
    assert "book/data/evidence.json" in chapter_verdicts(evidence.get("zoos", {}), "ch4")

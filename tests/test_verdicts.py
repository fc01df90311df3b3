"""The verdict page: its table is the one the stored measurements give, and each verdict follows the data."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from foundseg.experiments.across_zoos import read_evidence
from foundseg.experiments.verdicts import CLAIMS, HIGHER, Claim, verdict, verdict_table, verdicts

BOOK = Path(__file__).resolve().parents[1] / "book"
EVIDENCE = read_evidence(BOOK / "data" / "evidence.json")


def _claim(text: str) -> Claim:
    return next(c for c in CLAIMS if c.claim.startswith(text))


def test_the_verdict_page_shows_the_table_the_stored_data_gives():
    cells = json.loads((BOOK / "verdicts.ipynb").read_text())["cells"]
    shown = [o["data"]["text/markdown"] for c in cells if c["cell_type"] == "code" for o in c["outputs"]
             if "text/markdown" in o.get("data", {})]
    assert len(shown) == 1
    assert "".join(shown[0]) == verdict_table(verdicts(EVIDENCE))


def test_a_zoo_level_verdict_is_the_difference_read_by_hand_from_evidence_json():
    zoos = EVIDENCE["zoos"]
    cam = np.array([z["gradcam"]["single template"] for z in zoos.values()])
    disc = np.array([z["disc"] for z in zoos.values()])
    row = next(r for r in verdicts(EVIDENCE) if r["claim"].startswith("Grad-CAM of CLIP finds"))
    assert row["diff"] == pytest.approx(cam.mean() - disc.mean())
    beyond = cam.min() > disc.max()
    assert row["verdict"] == ("holds" if beyond else "not established" if (cam > disc).all() else "does not hold")
    assert row["zoos"] == f"{int((cam > disc).sum())} of {len(zoos)}"


def test_chapter_4_reads_the_head_seeds_when_one_zoo_holds_the_ablation():
    measured = {n: z for n, z in EVIDENCE["zoos"].items() if "odise_ablation" in z}
    row = next(r for r in verdicts(EVIDENCE) if r["claim"].startswith("ODISE trails"))
    clip_only = [z["odise_ablation"]["SAN-like: CLIP features only | ensemble"]["all_seeds"] for z in measured.values()]
    odise = [z["odise_ablation"]["ODISE (implicit captioner, UNet, VAE, noise) | ensemble"]["all_seeds"]
             for z in measured.values()]
    per_zoo = np.mean(clip_only, axis=1) - np.mean(odise, axis=1)
    assert row["diff"] == pytest.approx(per_zoo.mean(), abs=1e-9)
    assert row["over"] == ("head seeds, 1 zoo" if len(measured) == 1 else "zoos")


def test_a_verdict_turns_when_the_data_turn():
    claim = _claim("Grad-CAM of CLIP finds")
    assert verdict(claim, EVIDENCE["zoos"])["verdict"] == "holds"
    turned = copy.deepcopy(EVIDENCE["zoos"])
    for z in turned.values():
        z["disc"] = z["gradcam"]["single template"] + 0.3
    assert verdict(claim, turned)["verdict"] == "does not hold"
    assert verdict(claim, turned)["zoos"] == f"0 of {len(turned)}"


def test_a_claim_nobody_measured_is_untested_and_the_table_says_so():
    without_ablation = {"zoos": {n: {k: v for k, v in z.items() if k != "odise_ablation"}
                                 for n, z in EVIDENCE["zoos"].items()}}
    rows = verdicts(without_ablation)
    assert {r["verdict"] for r in rows if r["chapter"] == "04_odise_parts"} == {"untested here"}
    assert "**untested here**" in verdict_table(rows)


def test_a_shape_word_claim_is_untestable_on_a_model_that_does_not_read_the_shape():
    claims = [c for c in CLAIMS if c.models == "dit"]
    dit = {"seed 0": {"classifier_top1": {"shapes-dit": 0.28},
                      "renoised": {"shape word": {"DiT joint": {"0": 0.41}, "DiT concept": {"0": 0.14}},
                                   "absent shape word (control)": {"DiT joint": {"0": 0.40}},
                                   "colour word (oracle)": {"DiT joint": {"0": 0.46, "999": 0.15}},
                                   "centred disc": 0.23},
                      "denoised": {"DiT joint": {"1": 0.38, "5": 0.40}},
                      "clustered": {"shapes-dit": {"0": [0.51, 0.52]}, "shapes-sd": {"0": [0.48, 0.45]}}}}
    rows = {r["claim"]: r for r in verdicts({"dit": dit}, claims)}
    shape = [r for c, r in rows.items() if next(x for x in claims if x.claim == c).shape_word]
    assert shape and {r["verdict"] for r in shape} == {"untestable on this model"}
    assert all("0.28" in r["caveat"] for r in shape) and all(r["diff"] is not None for r in shape)
    colour = next(r for c, r in rows.items() if "colour word" in c and "centred disc" in c)
    assert colour["verdict"] == "not established" and colour["reading"] == "one value each, no spread"
    dit["seed 0"]["classifier_top1"]["shapes-dit"] = 0.9  # a model that reads the shape word is tested
    assert "untestable on this model" not in {r["verdict"] for r in verdicts({"dit": dit}, claims)}


def test_a_caveat_quotes_the_control_it_names():
    row = next(r for r in verdicts(EVIDENCE) if r["claim"].startswith("Grad-CAM of CLIP finds"))
    assert f"{EVIDENCE['controls']['control-no-region']['gradcam_miou']:.3f}" in row["caveat"]
    assert "not measured" in verdicts({"zoos": EVIDENCE["zoos"]})[0]["caveat"]


def test_higher_claims_name_two_different_numbers():
    for c in CLAIMS:
        assert c.a != c.b, c.claim
        assert c.expect in (HIGHER, "not higher")

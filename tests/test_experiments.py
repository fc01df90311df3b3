"""The chapters' protocols as functions: the numbers the evidence chapter stores for the shipped zoo are the ones
these functions give, and their controls and noise matching mean what the chapters say."""
from pathlib import Path

import numpy as np
import pytest

from foundseg.config import current_scale
from foundseg.eval import binary_iou, centred_disc
from foundseg.experiments.across_zoos import read_evidence
from foundseg.experiments.attention_noised_once import ABSENT, CAPTION, COLOUR, WORD_ONLY, disc_iou, prompted_items
from foundseg.experiments.clip_localizes import by_block
from foundseg.experiments.diffusion_transformers import matched_timesteps
from foundseg.models import load_clip, load_sd

SHIPPED = read_evidence(Path(__file__).resolve().parents[1] / "book" / "data" / "evidence.json")["zoos"][
    "seed 0 (shipped)"]


def test_chapter_2_by_block_gives_the_shipped_zoos_stored_numbers():
    scale = current_scale()
    res = by_block(load_clip("shapes-clip"), scale.count("layer_images"), scale.clip_size, progress=False)
    assert list(res["by_block"].values()) == pytest.approx(SHIPPED["by_layer"], abs=1e-5)  # float sums by threads


def test_chapter_3_items_score_every_prompt_against_the_first_object():
    items = prompted_items(20, 32)
    masks = {kind: [m for *_, m in v] for kind, v in items.items()}
    for kind in (CAPTION, ABSENT, COLOUR):
        assert all(np.array_equal(a, b) for a, b in zip(masks[kind], masks[WORD_ONLY]))
    for (_, prompt, word, _), (_, _, present, _) in zip(items[ABSENT], items[WORD_ONLY]):
        assert word in prompt and word != present
    for (_, prompt, word, _), (_, caption, shape, _) in zip(items[COLOUR], items[CAPTION]):
        assert prompt.endswith(f"{word} {shape}") and word in caption


def test_chapter_3_disc_floor_is_the_stored_one_and_the_disc_by_hand():
    items = prompted_items(current_scale().count("scenes"), 32)[WORD_ONLY]
    by_hand = np.mean([binary_iou(centred_disc(m.shape), m) for *_, m in items])
    assert disc_iou(items) == pytest.approx(by_hand) == pytest.approx(SHIPPED["test_disc"])


def test_matched_flow_timesteps_have_the_unets_signal_to_noise_ratio():
    pipe = load_sd("shapes-sd")
    alphas = pipe.scheduler.alphas_cumprod.double().numpy()
    for t, t_flow in matched_timesteps(pipe, range(0, 1000, 37)).items():
        sigma = t_flow / 1000
        flow_snr, unet_snr = (1 - sigma) ** 2 / sigma ** 2, alphas[t] / (1 - alphas[t])
        assert np.log(flow_snr) == pytest.approx(np.log(unet_snr), abs=0.1), t  # within the rounding of t'
    assert list(matched_timesteps(pipe, [0, 500, 999]).values()) == sorted(matched_timesteps(pipe, [0, 500, 999]).values())


def test_chapter_6_seeds_are_measured_on_the_chapters_test_objects():
    seeds = read_evidence(Path(__file__).resolve().parents[1] / "book" / "data" / "evidence.json")["dit"]
    n = current_scale().count("scenes") // 2
    disc = disc_iou(prompted_items(n, 32)[WORD_ONLY])
    assert [s["renoised"]["centred disc"] for s in seeds.values()] == pytest.approx([disc] * len(seeds))
    shipped_unet = seeds["seed 0 (shipped)"]["renoised"]["shape word"]["UNet cross"]
    for seed in seeds.values():  # every seed is read beside the same shipped shapes-sd
        assert seed["renoised"]["shape word"]["UNet cross"] == pytest.approx(shipped_unet)
        assert seed["renoised"]["dit t"] == {"0": 28, "200": 364, "400": 538, "600": 696, "800": 836, "999": 936}

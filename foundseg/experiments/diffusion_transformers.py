"""Chapter 6: chapter 3's measurements on a diffusion transformer (shapes-dit, SD3's architecture) beside
shapes-sd — joint attention and ConceptAttention against cross-attention, for the shape word and for the colour
word (which shapes-dit renders, where it barely reads the shape word), with the same controls, the two models
compared at matched noise."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..data import CLASSES, COLOURS
from ..eval import denoise_curve, generated_scenes, last_step_scores, renoise_curve
from ..eval.classification import diffusion_answers, single_object_test_images, true_classes
from . import attention_noised_once as chapter_3
from .attention_noised_once import ABSENT, COLOUR, WORD_ONLY, disc_iou, prompted_items

UNET, JOINT, CONCEPT = "UNet cross", "DiT joint", "DiT concept"
"""The three kinds of map: shapes-sd's cross-attention, shapes-dit's joint attention and its ConceptAttention."""
WORDS = {"shape word": (WORD_ONLY, list(CLASSES)), "colour word (oracle)": (COLOUR, list(COLOURS)),
         "absent shape word (control)": (ABSENT, list(CLASSES))}
"""The words whose maps are scored: the prompt kind of
:func:`~foundseg.experiments.attention_noised_once.prompted_items` and ConceptAttention's concepts (the word
competes with the other shape names, or with the other colour names)."""

GUIDANCE, STRENGTH = 7.5, 0.5
"""Classifier-free guidance while generating, and how far (img2img strength) test images are re-noised before
denoising again."""
NOISE_LEVELS, CLUSTER_LEVELS = (0, 200, 400, 600, 800, 999), (0, 200, 500, 800)
"""The UNet timesteps of the noised-once maps and of k-means (the transformer's at the same signal-to-noise)."""


def matched_timesteps(unet_pipe, ts, n_train: int = 1000) -> dict[int, int]:
    """For each timestep t of the UNet's scheduler, the rectified-flow timestep (σ = t' / ``n_train``) at the same
    signal-to-noise ratio: (1 − σ)² / σ² = ᾱ_t / (1 − ᾱ_t).

    >>> from foundseg.models import load_sd
    >>> matched_timesteps(load_sd("shapes-sd"), [0, 200, 999])
    {0: 28, 200: 364, 999: 936}
    """
    alphas = unet_pipe.scheduler.alphas_cumprod.double()
    snr = {t: float(alphas[t] / (1 - alphas[t])) for t in ts}
    return {t: int(round(n_train / (1 + np.sqrt(v)))) for t, v in snr.items()}


def classifier_top1(pipes: dict, n: int, size: int) -> dict[str, float]:
    """Each pipeline's top-1 as a diffusion classifier over the shapes on the first ``n`` single-object test
    images at ``size`` px: name → top-1."""
    ids = single_object_test_images(n)
    truth = true_classes(ids)
    return {name: float((diffusion_answers(pipe, ids, size) == truth).mean()) for name, pipe in pipes.items()}


def generated(unet_pipe, dit_pipe, n: int, steps: int, guidance: float, size: int) -> dict:
    """Each kind of map's last-step scores (:func:`~foundseg.eval.last_step_scores`) on ``n`` single-object
    scenes each model generates itself, with the number of ``scenes`` found: kind → scores."""
    unet = generated_scenes(unet_pipe, n, steps=steps, guidance=guidance, size=size)
    dit = generated_scenes(dit_pipe, n, steps=steps, guidance=guidance, concepts=list(CLASSES), size=size)
    joint = [replace(s, maps=s.maps.joint) for s in dit]  # ConceptAttention's pass gives both kinds
    return {kind: {**last_step_scores(scenes), "scenes": len(scenes)}
            for kind, scenes in ((UNET, unet), (JOINT, joint), (CONCEPT, dit))}


def renoised(unet_pipe, dit_pipe, n: int, size: int, ts, words=tuple(WORDS)) -> dict:
    """Each kind of map's IoU on the first ``n`` test images noised once, for each of ``words`` (keys of
    :data:`WORDS`): shapes-sd at each t of ``ts``, shapes-dit at the flow timestep of the same signal-to-noise
    ratio (``"dit t"``: t → t'), keyed by the UNet's t; and the centred disc on the same objects.

    Returns ``{"dit t": {t: t'}, word: {kind: {t: IoU}}, "centred disc": IoU}``."""
    items = prompted_items(n, size)
    matched = matched_timesteps(unet_pipe, ts)
    out = {"dit t": matched, "centred disc": disc_iou(items[WORD_ONLY])}
    for word in words:
        kind, concepts = WORDS[word]
        unet = renoise_curve(unet_pipe, items[kind], ts, size=(size, size))["all"]
        dit = renoise_curve(dit_pipe, items[kind], list(matched.values()), concepts=concepts, size=(size, size))
        out[word] = {UNET: unet, JOINT: {t: dit["joint"][matched[t]] for t in ts},
                     CONCEPT: {t: dit["all"][matched[t]] for t in ts}}
    return out


def denoised(unet_pipe, dit_pipe, n: int, size: int, strength: float, steps: int, guidance: float) -> dict:
    """Each kind of map's IoU at each denoising step after re-noising the first ``n`` test images to
    ``strength`` (img2img), prompted with the shape word alone: kind → {step: IoU}."""
    items = prompted_items(n, size)[WORD_ONLY]
    dit = denoise_curve(dit_pipe, items, strength, steps, guidance, concepts=list(CLASSES))  # both kinds
    return {UNET: denoise_curve(unet_pipe, items, strength, steps, guidance)["all"], JOINT: dit["joint"],
            CONCEPT: dit["all"]}


def clustered(pipes: dict, n: int, size: int, ts) -> dict:
    """Chapter 3's k-means (:func:`~foundseg.experiments.attention_noised_once.clustered`) on each pipeline's
    output-side features of the first ``n`` test images: name → {t: (true k (an oracle), k from the
    features)} mIoU."""
    out = {}
    for name, pipe in pipes.items():
        q = chapter_3.clustered(pipe, n, size, ts, layers=False)
        out[name] = {t: (q["true k (oracle)"][t]["miou"], q["k from features"][t]["miou"]) for t in ts}
    return out

"""Each chapter's numbers across independently trained zoos: the book's evidence, read back.

``evidence/zoos.py`` measures every zoo (seed 0 ships; others are trained from scratch with other seeds) and
every shapes-dit seed with the chapters' own functions and stores the numbers by zoo in
``book/data/evidence.json``. Here the chapters read them back: :data:`METRICS` names each chapter's numbers,
:func:`table` prints them zoo by zoo with their mean and spread. Whether a claim holds is decided in one place,
:mod:`foundseg.experiments.verdicts`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..tables import text_table
from .odise_parts import CLIP_ONLY, PAPER_ROWS

IC, NULL, NO_UNET, NO_VAE = list(PAPER_ROWS)[:4]
"""Chapter 4's full ODISE row, its null-text row and the rows without the UNet and without the VAE, by name."""
METRICS = {
    "ch2": {
        "Grad-CAM, single template": ("gradcam", "single template"),
        "Grad-CAM, background prompts": ("gradcam", "background prompts"),
        "Grad-CAM, template ensemble": ("gradcam", "template ensemble"),
        "Grad-CAM, ensemble + synonyms": ("gradcam", "ensemble + synonyms"),
        "Grad-CAM, bare class name": ("gradcam", "bare class name"),
        "centred disc": ("disc",),
        "CAM at the last block": ("by_layer", -1),
        "CAM one block earlier": ("by_layer", -2),
    },
    "ch3": {
        "last generation step": ("last_step",),
        **{f"generated, re-noised t={t}": ("renoise_generated", t) for t in ("0", "200", "800")},
        **{f"test, true caption (oracle) t={t}": ("renoise_test_caption", t) for t in ("0", "800")},
        **{f"test, word only t={t}": ("renoise_test_word", t) for t in ("0", "800")},
        "denoised again, first step": ("denoise_generated", "1"),
        "denoised again, last step": ("denoise_generated", -1),
        **{f"k-means, true k (oracle) t={t}": ("kmeans_oracle_k", t) for t in ("0", "800")},
        **{f"k-means, k from features t={t}": ("kmeans_auto_k", t) for t in ("0", "800")},
    },
    "ch4": {"ODISE (with CLIP ensemble)": ("odise_ablation", f"{IC} | ensemble", "all_mean"),
            "ODISE, head alone": ("odise_ablation", f"{IC} | head", "all_mean"),
            "w/o IC (null text)": ("odise_ablation", f"{NULL} | ensemble", "all_mean"),
            "w/o (IC & UNet)": ("odise_ablation", f"{NO_UNET} | ensemble", "all_mean"),
            "w/o (IC & VAE), no noise": ("odise_ablation", f"{NO_VAE} | ensemble", "all_mean"),
            "CLIP features only (region loss)": ("odise_ablation", f"{CLIP_ONLY} | ensemble", "all_mean"),
            "all background": ("odise_ablation", "all background", "all_mean"),
            "ODISE, unseen classes": ("odise_ablation", f"{IC} | ensemble", "unseen_mean"),
            "ODISE, head alone, unseen classes": ("odise_ablation", f"{IC} | head", "unseen_mean")},
    "ch5": {"CLIP zero-shot top-1": ("classifier_top1", "clip"),
            "diffusion classifier top-1": ("classifier_top1", "diffusion")},
    "ch6": {"diffusion classifier over shapes": ("classifier_top1", "shapes-dit"),
            "joint, colour word (oracle) t'=28": ("renoised", "colour word (oracle)", "DiT joint", "0"),
            "joint, colour word (oracle) t'=936": ("renoised", "colour word (oracle)", "DiT joint", "999"),
            "joint, shape word t'=28": ("renoised", "shape word", "DiT joint", "0"),
            "joint, absent shape word t'=28": ("renoised", "absent shape word (control)", "DiT joint", "0"),
            "concept, shape word t'=28": ("renoised", "shape word", "DiT concept", "0"),
            "centred disc (test images)": ("renoised", "centred disc"),
            "joint, denoised again, first step": ("denoised", "DiT joint", "1"),
            "joint, denoised again, last step": ("denoised", "DiT joint", -1),
            "k-means DiT, true k (oracle) t=0": ("clustered", "shapes-dit", "0", 0),
            "k-means UNet, true k (oracle) t=0": ("clustered", "shapes-sd", "0", 0)},
}
"""Per chapter: the printed name of each number and its path into one zoo's measurements (chapter 6's into
one shapes-dit seed's, beside the shipped shapes-sd)."""
KINDS = {"ch6": "dit"}
"""The part of the evidence a chapter's zoos are in, where it is not ``zoos``: chapter 6 compares shapes-dit's
training seeds."""


def read_evidence(path="data/evidence.json") -> dict:
    """The stored evidence (``controls`` and ``zoos``, each by name); empty when ``path`` is not there, as when
    a chapter is opened alone (in Colab) without the book's ``book/data``."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def lookup(measured: dict, path: tuple):
    """The value at ``path`` in one zoo's (or control's) measurements; an integer steps into a dict by position.

    >>> lookup({"a": {"1": 0.2, "5": 0.4}}, ("a", -1))
    0.4
    """
    value = measured
    for key in path:
        value = value[list(value)[key]] if isinstance(key, int) and isinstance(value, dict) else value[key]
    return value


def has(measured: dict, path: tuple) -> bool:
    """Whether ``measured`` holds a value at ``path`` (:func:`lookup`).

    >>> has({"a": [0.1]}, ("a", 0)), has({"a": [0.1]}, ("b",))
    (True, False)
    """
    try:
        lookup(measured, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def chapter_values(zoos: dict[str, dict], metrics: dict[str, tuple]) -> dict[str, dict[str, float]]:
    """Each number of ``metrics`` (printed name → path into a zoo's measurements) on each zoo: name → {zoo:
    value}.

    >>> chapter_values({"seed 0": {"disc": .25}, "seed 1": {"disc": .27}}, {"centred disc": ("disc",)})
    {'centred disc': {'seed 0': 0.25, 'seed 1': 0.27}}
    """
    return {name: {zoo: float(lookup(z, path)) for zoo, z in zoos.items()} for name, path in metrics.items()}


def table(zoos: dict[str, dict], metrics: dict[str, tuple]) -> list[str]:
    """Printable lines: each number of ``metrics`` (printed name → path into a zoo's measurements) on each zoo,
    then their mean and spread (max − min).

    >>> zoos = {"seed 0 (shipped)": {"disc": .25, "by_layer": [.2, .5]}, "seed 1": {"disc": .27, "by_layer": [.3, .4]}}
    >>> print("\\n".join(table(zoos, {"centred disc": ("disc",), "CAM at the last block": ("by_layer", -1)})))
                                        seed 0 seed 1   mean spread
    centred disc                         0.250  0.270  0.260  0.020
    CAM at the last block                0.500  0.400  0.450  0.100
    """
    rows = {name: [*v.values(), np.mean(list(v.values())), np.ptp(list(v.values()))]
            for name, v in chapter_values(zoos, metrics).items()}
    return text_table(rows, [n.split(" (")[0] for n in zoos] + ["mean", "spread"], 7, "", 35).split("\n")


def measured_zoos(zoos: dict[str, dict], chapter: str) -> dict[str, dict]:
    """The zoos whose measurements hold every number of chapter ``chapter``'s :data:`METRICS`."""
    return {name: z for name, z in zoos.items() if all(has(z, path) for path in METRICS[chapter].values())}

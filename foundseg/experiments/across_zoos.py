"""Each chapter's numbers and conclusions across independently trained zoos: the book's evidence.

``evidence/zoos.py`` measures every zoo (seed 0 ships; others are trained from scratch with other seeds) with
the chapters' own functions and stores the numbers by zoo in ``book/data/evidence.json``. Here the chapters
read them back: :func:`conclusions` decides each claim on one zoo's numbers, :func:`across_zoos` prints a
chapter's numbers zoo by zoo with their mean and spread, and labels each claim *holds on every zoo*, *on some*
or *on none*.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..tables import text_table
from .odise_parts import CLIP_ONLY, PAPER_ROWS

IC, NULL = list(PAPER_ROWS)[:2]
"""Chapter 4's full ODISE row and its null-text row, by name."""
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
            "CLIP features only (region loss)": ("odise_ablation", f"{CLIP_ONLY} | ensemble", "all_mean"),
            "all background": ("odise_ablation", "all background", "all_mean")},
    "ch5": {"CLIP zero-shot top-1": ("classifier_top1", "clip"),
            "diffusion classifier top-1": ("classifier_top1", "diffusion")},
}
"""Per chapter: the printed name of each number and its path into one zoo's measurements."""


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


def conclusions(zoo: dict) -> dict[str, bool]:
    """Each chapter's conclusion, decided on one zoo's measurements (the keys of ``evidence/zoos.py``'s
    ``measure_chapters``); a claim's name starts with its chapter (``ch2:`` …)."""
    g, by_layer = zoo["gradcam"], zoo["by_layer"]
    renoised, denoised = zoo["renoise_generated"], zoo["denoise_generated"]
    return {
        "ch2: Grad-CAM beats the centred disc by 0.05 mIoU or more": g["single template"] >= zoo["disc"] + 0.05,
        "ch2: no prompt variant beats the single template":
            max(v for k, v in g.items() if k != "single template") <= g["single template"],
        "ch2: the last block is the best layer for the CAM": int(np.argmax(by_layer)) == len(by_layer) - 1,
        "ch3: re-noised once at t = 0, the map keeps the last step's IoU (within 0.03)":
            abs(renoised["0"] - zoo["last_step"]) <= 0.03,
        "ch3: the map degrades with the noise (t = 800 below t = 0 by 0.1 or more)":
            renoised["800"] <= renoised["0"] - 0.1,
        "ch3: denoising again sharpens generated images' maps (last step above first)":
            list(denoised.values())[-1] > denoised["1"],
        "ch3: k-means on the features degrades with the noise (t = 800 below t = 0)":
            zoo["kmeans_oracle_k"]["800"] < zoo["kmeans_oracle_k"]["0"],
        **(_chapter_4(zoo["odise_ablation"]) if "odise_ablation" in zoo else {}),
        "ch5: CLIP zero-shot classifies at least as well as the diffusion classifier":
            zoo["classifier_top1"]["clip"] >= zoo["classifier_top1"]["diffusion"],
    }


def _chapter_4(a: dict) -> dict[str, bool]:
    mean = lambda row, variant="ensemble": a[f"{row} | {variant}"]["all_mean"]  # noqa: E731
    return {"ch4: the implicit captioner adds more than 0.02 mIoU over the null text": mean(IC) - mean(NULL) > 0.02,
            "ch4: the CLIP-only head beats full ODISE": mean(CLIP_ONLY) > mean(IC),
            "ch4: the CLIP ensemble adds more than 0.02 mIoU to full ODISE": mean(IC) - mean(IC, "head") > 0.02}


def label(verdicts: dict[str, bool]) -> str:
    """Where a claim holds, from its verdict on each zoo: ``"every zoo"``, ``"no zoo"`` or ``"some"``, with the
    count (and, for some, which).

    >>> label({"seed 0": True, "seed 1": False, "seed 2": True})
    'some (2 of 3: seed 0, seed 2)'
    >>> label({"seed 0": True})
    'every zoo (1 of 1)'
    """
    held = [name for name, v in verdicts.items() if v]
    count = f"{len(held)} of {len(verdicts)}"
    if len(held) == len(verdicts):
        return f"every zoo ({count})"
    if not held:
        return f"no zoo ({count})"
    return f"some ({count}: {', '.join(held)})"


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


def across_zoos(zoos: dict[str, dict], chapter: str) -> str:
    """Chapter ``chapter``'s numbers on each zoo (:func:`table`), then each of its conclusions with where it
    holds (:func:`label`), as printable text."""
    if chapter not in METRICS:
        raise ValueError(f"chapter must be one of {list(METRICS)}, not {chapter!r}")
    if not zoos:
        return ("no zoo measured here: the measurements are in the book's\n"
                "book/data/evidence.json (python evidence/zoos.py)")
    measured = measured_zoos(zoos, chapter)
    missing = [name for name in zoos if name not in measured]
    if not measured:
        first_key = next(iter(METRICS[chapter].values()))[0]
        return f"no zoo measured with this chapter's protocol yet ({first_key}; python evidence/zoos.py)"
    verdicts = {name: conclusions(z) for name, z in measured.items()}
    claims = [c for c in next(iter(verdicts.values())) if c.startswith(chapter + ":")]
    note = [f"not measured with this chapter's protocol yet: {', '.join(missing)}"] if missing else []
    return "\n".join(note + table(measured, METRICS[chapter]) + [
        f"- {c[len(chapter) + 2:]}\n    holds on {label({n: v[c] for n, v in verdicts.items()})}" for c in claims])

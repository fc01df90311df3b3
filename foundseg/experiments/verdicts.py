"""The book's verdict on each claim of the paper, decided from the stored measurements (``book/data/``).

Each :class:`Claim` names two measured values (paths into one zoo's measurements, as ``evidence/zoos.py``
stores them) and what the paper says of them: that the first is higher, or that it is not. :func:`verdicts`
reads both on every zoo measured, compares them with :func:`foundseg.eval.spread.compare` (a difference
counts only beyond the spread across zoos, or across head seeds where chapter 4 has one zoo) and says whether
the claim holds, on how many zoos, and by how much. :func:`verdict_table` renders the result as Markdown, and
:func:`chapter_verdicts` prints one chapter's numbers across zoos with its claims' verdicts: the chapters and
the verdict page decide with the same code.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import numpy as np

from ..data.paper import table1
from ..eval.spread import compare
from .across_zoos import IC, KINDS, METRICS, NO_UNET, NO_VAE, NULL, has, lookup, measured_zoos, table
from .odise_parts import CLIP_AT_DIFFUSION_SIZE, CLIP_ONLY

LITTLE = 0.02
"""A difference below this mIoU is "little": a claim that one setting adds little holds on a zoo where it adds
less."""
HIGHER, NOT_HIGHER = "higher", "not higher"
READS_WORD = 0.8
"""The diffusion classifier's top-1 over the shapes below which a model does not read the shape word: its
shape-word maps are untestable."""
READS = ("classifier_top1", "shapes-dit")
"""Where a shapes-dit seed's measurements hold that top-1."""


@dataclass(frozen=True)
class Claim:
    """One claim and how it is tested: ``a`` is ``expect``-ed (``"higher"`` or ``"not higher"``) than ``b``,
    both paths into one zoo's measurements (a chapter 4 path names a row, a variant and a metric) in the
    evidence's ``models`` part (``"zoos"``, or ``"dit"`` for shapes-dit's seeds); ``shape_word`` when the
    claim is only testable on a model that reads the shape word (:data:`READS_WORD`)."""

    point: str
    claim: str
    chapter: str
    paper: str
    a: tuple
    b: tuple
    expect: str
    caveat: str
    full_scale: str
    models: str = "zoos"
    shape_word: bool = False


def _table1_gain(better: str, worse: str, bench: str = "A-150") -> str:
    rows = {r["method"]: r for r in table1()}
    return f"{float(rows[better][bench]) - float(rows[worse][bench]):+.1f} mIoU on {bench}"


REGION_LOSS = "shapes-clip learnt a region loss that real CLIP never does"
CLAIMS = (
    Claim("1. CLIP already localises", "Grad-CAM of CLIP finds the named object: above a centred disc",
          "02_clip_localizes", "Fig. 1, 2 (qualitative)", ("gradcam", "single template"), ("disc",), HIGHER,
          REGION_LOSS + "; a control CLIP without it: {control-no-region.gradcam_miou:.3f} "
          "(shipped {shipped (region and word losses).gradcam_miou:.3f}, one training each)",
          "CLIP ViT-B/16 on photos with masks"),
    Claim("1. CLIP already localises", "the prompt matters: the template ensemble above one template",
          "02_clip_localizes", "Sec. 3.1 (said, not shown)", ("gradcam", "template ensemble"),
          ("gradcam", "single template"), HIGHER, "eight class names; no synonyms a real photo needs",
          "prompt variants on real class names"),
    Claim("1. CLIP already localises", "CLIP-ES's layer: the last block's CAM above the one before",
          "02_clip_localizes", "CLIP-ES's choice (not in the paper)", ("by_layer", -1), ("by_layer", -2), HIGHER,
          REGION_LOSS + " at the last block's input and output", "the same sweep over ViT-B/16's 12 blocks"),
    Claim("2. Attention degrades when the denoising is skipped",
          "at ODISE's setting (t = 0) one noised pass maps the word worse than the last generation step",
          "03_attention_noised_once", "Fig. 3 (one image)", ("last_step",), ("renoise_generated", "0"), HIGHER,
          "generated images of a 32 px world; the word's map at the last step is the reference",
          "the same on SD 1.5 at 512 px"),
    Claim("2. Attention degrades when the denoising is skipped",
          "the maps degrade with the noise level: t = 0 above t = 800", "03_attention_noised_once",
          "Fig. 3 (its noise level not given)", ("renoise_generated", "0"), ("renoise_generated", "800"), HIGHER,
          "t = 800 is far more noise than ODISE adds", "the same on SD 1.5"),
    Claim("2. Attention degrades when the denoising is skipped",
          "a test image's map of its class word (t = 0) localises it: above a centred disc",
          "03_attention_noised_once", "– (a control the paper does not run)", ("renoise_test_word", "0"),
          ("test_disc",), HIGHER, "the word alone; the true caption reads twice as well but is an oracle",
          "the same on SD 1.5 with real class words"),
    Claim("2. Attention degrades when the denoising is skipped",
          "the map is the word's: the class word above the word of a class the image does not hold (t = 0)",
          "03_attention_noised_once", "– (a control the paper does not run)", ("renoise_test_word", "0"),
          ("renoise_test_absent_word", "0"), HIGHER, "both maps scored against the object that is there",
          "the same on SD 1.5 with real class words"),
    Claim("2. Attention degrades when the denoising is skipped",
          "denoising again sharpens the maps: the last step above the first", "03_attention_noised_once",
          "Sec. 3.2 (the necessity of denoising)", ("denoise_generated", -1), ("denoise_generated", "1"), HIGHER,
          "five steps from half the noise", "the same on SD 1.5"),
    Claim("2. Attention degrades when the denoising is skipped",
          "k-means on UNet features degrades with the noise: t = 0 above t = 800", "03_attention_noised_once",
          "Fig. 4 (one image)", ("kmeans_oracle_k", "0"), ("kmeans_oracle_k", "800"), HIGHER,
          "k is the true number of regions (an oracle)", "the same on SD 1.5's features"),
    Claim("3. ODISE's parts are worth less than they seem",
          "the implicit captioner adds little: ODISE not above ODISE w/o IC by 0.02 or more", "04_odise_parts",
          "Table 1: " + _table1_gain("ODISE", "ODISE w/o IC"), ("odise_ablation", IC, "ensemble", "all"),
          ("odise_ablation", NULL, "ensemble", "all"), NOT_HIGHER,
          "the captioner reads CLIP's image embedding: its gain would be CLIP's", "ODISE's COCO training"),
    Claim("3. ODISE's parts are worth less than they seem", "the UNet adds: w/o IC above w/o (IC & UNet)",
          "04_odise_parts", "Table 1: " + _table1_gain("ODISE w/o IC", "ODISE w/o (IC & UNet)"),
          ("odise_ablation", NULL, "ensemble", "all"), ("odise_ablation", NO_UNET, "ensemble", "all"), HIGHER,
          "every row is read with the frozen CLIP's ensemble", "ODISE's COCO training"),
    Claim("3. ODISE's parts are worth less than they seem",
          "the VAE and the noise add little: w/o IC not above w/o (IC & VAE), no noise, by 0.02 or more",
          "04_odise_parts", "Table 1: " + _table1_gain("ODISE w/o IC", "ODISE* w/o (IC & VQGAN)"),
          ("odise_ablation", NULL, "ensemble", "all"), ("odise_ablation", NO_VAE, "ensemble", "all"), NOT_HIGHER,
          "the paper's row drops the VAE's encoder and decoder and the noise together", "ODISE's COCO training"),
    Claim("3. ODISE's parts are worth less than they seem",
          "ODISE trails a model on CLIP alone: CLIP features only above ODISE", "04_odise_parts",
          "Table 1 (SAN): " + _table1_gain("SAN", "ODISE"), ("odise_ablation", CLIP_ONLY, "ensemble", "all"),
          ("odise_ablation", IC, "ensemble", "all"), HIGHER,
          REGION_LOSS + "; its CLIP reads 64 px images where the UNet reads 32 px (the control below reads "
          "CLIP at 32 px)", "SAN against ODISE"),
    Claim("Beyond the paper", "ODISE's CLIP ensemble names unseen classes: unseen mIoU above the head alone",
          "04_odise_parts", "ODISE's and FC-CLIP's inference", ("odise_ablation", IC, "ensemble", "unseen"),
          ("odise_ablation", IC, "head", "unseen"), HIGHER, REGION_LOSS + " for the two unseen classes too",
          "ODISE's ensemble on the paper's benchmarks"),
    Claim("Beyond the paper", "ODISE's CLIP ensemble adds to its head: all-class mIoU above the head alone",
          "04_odise_parts", "ODISE's and FC-CLIP's inference", ("odise_ablation", IC, "ensemble", "all"),
          ("odise_ablation", IC, "head", "all"), HIGHER, REGION_LOSS, "ODISE's ensemble on the paper's benchmarks"),
    Claim("Beyond the paper", "CLIP classifies (zero-shot) above a diffusion classifier", "05_survey",
          "Sec. 2 (the survey)", ("classifier_top1", "clip"), ("classifier_top1", "diffusion"), HIGHER,
          "single-object 32 px images, eight classes", "Stable Diffusion's classifier on real photos"),
    Claim("Beyond the paper", "a diffusion transformer's joint attention maps the colour word (which shapes-dit "
          "renders) on a test image noised once at t' = 28: above a centred disc", "06_diffusion_transformers",
          "– (SD3 came after it)", ("renoised", "colour word (oracle)", "DiT joint", "0"),
          ("renoised", "centred disc"), HIGHER, "the colour word is an oracle input (the true colour); "
          "shapes-dit's seeds share the shipped CLIP and autoencoder", "SD3 medium's joint attention",
          models="dit"),
    Claim("Beyond the paper", "its colour-word maps degrade with the noise: t' = 28 above t' = 936",
          "06_diffusion_transformers", "Fig. 3's question on an MMDiT",
          ("renoised", "colour word (oracle)", "DiT joint", "0"), ("renoised", "colour word (oracle)", "DiT joint",
                                                                  "999"), HIGHER,
          "t' = 936 has the SNR of the UNet's t = 999", "SD3 medium's joint attention", models="dit"),
    Claim("Beyond the paper", "denoising again sharpens its joint maps: the last step above the first",
          "06_diffusion_transformers", "Sec. 3.2's question on an MMDiT", ("denoised", "DiT joint", -1),
          ("denoised", "DiT joint", "1"), HIGHER, "shape word; five steps from half the noise",
          "SD3 medium's joint attention", models="dit", shape_word=True),
    Claim("Beyond the paper", "its shape word's joint map is the word's: above the map of a shape the image "
          "does not hold (t' = 28)", "06_diffusion_transformers", "– (a control the paper does not run)",
          ("renoised", "shape word", "DiT joint", "0"), ("renoised", "absent shape word (control)", "DiT joint",
                                                        "0"), HIGHER,
          "both maps scored against the object that is there", "SD3 medium's joint attention", models="dit",
          shape_word=True),
    Claim("Beyond the paper", "ConceptAttention maps the shape word: above a centred disc (t' = 28)",
          "06_diffusion_transformers", "ConceptAttention (FLUX)", ("renoised", "shape word", "DiT concept", "0"),
          ("renoised", "centred disc"), HIGHER, "no background concept; the concepts are shape names alone",
          "ConceptAttention on SD3 or FLUX", models="dit", shape_word=True),
    Claim("Beyond the paper", "k-means groups regions better on the transformer's features than on the UNet's "
          "(true k, t = 0)", "06_diffusion_transformers", "–", ("clustered", "shapes-dit", "0", 0),
          ("clustered", "shapes-sd", "0", 0), HIGHER, "k is the true number of regions (an oracle); one "
          "shapes-sd", "SD3's features against SD 1.5's", models="dit"),
)
"""The paper's claims and the sub-claims the chapters test, in the order of the paper's points."""


def _values(zoos: dict, path: tuple) -> tuple[dict, np.ndarray, str]:
    """Per-zoo values of ``path`` on the zoos that measured it, and the values whose spread a difference must
    beat: one per zoo, or one per head seed where chapter 4 was measured on one zoo only."""
    if path[0] != "odise_ablation":
        per_zoo = {name: float(lookup(z, path)) for name, z in zoos.items() if has(z, path)}
        return per_zoo, np.array(list(per_zoo.values())), "zoos"
    _, row, variant, metric = path
    key = ("odise_ablation", f"{row} | {variant}")
    seeds = {name: lookup(z, key)[f"{metric}_seeds"] for name, z in zoos.items() if has(z, key)}
    per_zoo = {name: float(np.mean(v)) for name, v in seeds.items()}
    if len(seeds) == 1:
        return per_zoo, np.array(next(iter(seeds.values()))), "head seeds, 1 zoo"
    return per_zoo, np.array(list(per_zoo.values())), "zoos"


def verdict(claim: Claim, zoos: dict) -> dict:
    """``claim`` decided on ``zoos`` (name → measurements): ``verdict`` (``"holds"``; ``"not established"`` when
    every zoo agrees with a "higher" claim but the difference stays within the spread; ``"does not hold"``; or
    ``"untested here"``), the mean difference a − b, the spread it is read against (the larger range of a's and
    b's values), the :func:`~foundseg.eval.spread.compare` reading, and on how many zoos the claim holds.

    >>> z = {"seed 0": {"x": 0.6, "y": 0.3}, "seed 1": {"x": 0.5, "y": 0.35}}
    >>> c = Claim("p", "x above y", "ch", "Fig. 1", ("x",), ("y",), HIGHER, "", "")
    >>> v = verdict(c, z)
    >>> v["verdict"], round(v["diff"], 3), round(v["spread"], 3), v["zoos"]
    ('holds', 0.225, 0.1, '2 of 2')
    >>> verdict(c, {"seed 0": {"x": 0.6, "y": 0.55}, "seed 1": {"x": 0.4, "y": 0.3}})["verdict"]  # ranges overlap
    'not established'
    >>> verdict(c, {"seed 0": {"x": 0.6, "y": 0.3}})["reading"]  # one zoo: no spread
    'one value each, no spread'
    >>> verdict(c, {"seed 0": {"x": 0.6}})["verdict"]
    'untested here'
    """
    a_zoo, a, over = _values(zoos, claim.a)
    b_zoo, b, _ = _values(zoos, claim.b)
    both = [name for name in a_zoo if name in b_zoo]
    if not both:
        return {"verdict": "untested here", "diff": None, "spread": None, "reading": "not measured", "zoos": "0 of 0",
                "over": over}
    if over == "zoos":
        a, b = np.array([a_zoo[n] for n in both]), np.array([b_zoo[n] for n in both])
    cmp = compare(a, b)
    if len(a) < 2:  # one value each: no spread to read a difference against
        cmp.update(beyond=False, reading="one value each, no spread")
    beyond_up = cmp["beyond"] and cmp["diff"] > 0
    if claim.expect == HIGHER:
        holds, on_zoo = beyond_up, [a_zoo[n] > b_zoo[n] for n in both]
    else:
        holds, on_zoo = not beyond_up or cmp["diff"] < LITTLE, [a_zoo[n] - b_zoo[n] < LITTLE for n in both]
    established = "not established" if claim.expect == HIGHER and all(on_zoo) else "does not hold"
    return {"verdict": "holds" if holds else established, "diff": cmp["diff"],
            "spread": float(max(np.ptp(a), np.ptp(b))), "reading": cmp["reading"],
            "zoos": f"{sum(on_zoo)} of {len(both)}", "over": over}


def verdicts(evidence: dict, claims=CLAIMS) -> list[dict]:
    """Every claim decided on the stored ``evidence`` (``book/data/evidence.json``, read with
    :func:`~foundseg.experiments.across_zoos.read_evidence`): one dict per claim with the claim's fields, its
    :func:`verdict` and its caveat filled in from the controls' measurements. A claim on the shape word of a
    model whose diffusion classifier names the shape of fewer than :data:`READS_WORD` of the test images (on
    any of its seeds) is untestable on that model: its difference is shown, its verdict is not given."""
    controls = evidence.get("controls", {})
    rows = []
    for c in claims:
        zoos = evidence.get(c.models, {})
        row = {**vars(c), "caveat": _fill(c.caveat, controls), **verdict(c, zoos)}
        row["unit"] = "shapes-dit seeds" if c.models == "dit" else "zoos"  # what the values are one per
        if row["over"] == "zoos":
            row["over"] = row["unit"]
        reads = sorted({round(lookup(z, READS), 2) for z in zoos.values() if has(z, READS)})
        if c.shape_word and reads and reads[0] < READS_WORD:
            row["verdict"] = "untestable on this model"
            rate = f"{reads[0]:.2f}" if len(reads) == 1 else f"{reads[0]:.2f}–{reads[-1]:.2f}"
            row["caveat"] += (f"; shapes-dit names the shape of {rate} of test images (diffusion classifier; "
                              "chance 0.125)")
        rows.append(row)
    return rows


def _fill(text: str, controls: dict) -> str:
    """``text`` with each ``{control.key:format}`` replaced by that control's measurement ("not measured" when
    the control is not stored)."""
    def value(m):
        name, key, fmt = m.group(1), m.group(2), m.group(3)
        return format(controls[name][key], fmt) if key in controls.get(name, {}) else "not measured"
    return re.sub(r"\{([^{}.]+)\.(\w+):([^{}]+)\}", value, text)


def clip_only_controls(evidence: dict) -> dict:
    """Chapter 4's CLIP-only row (ODISE's inference) and its control at the diffusion rows' image size, on each
    control CLIP that was measured with them: name → {row: all-class mIoU mean}."""
    out = {}
    for name, control in evidence.get("controls", {}).items():
        rows = control.get("odise_clip_only")
        if rows:
            out[name] = {row: rows[f"{row} | ensemble"]["all_mean"] for row in (CLIP_ONLY, CLIP_AT_DIFFUSION_SIZE)}
    return out


def verdict_table(rows: list[dict]) -> str:
    """:func:`verdicts`' rows as one Markdown table, grouped by the paper's point: the claim with its chapter and
    the paper's evidence, the verdict with the zoos it holds on, the difference against the spread, the main
    caveat and what full scale would test."""
    lines = ["| claim tested (chapter; the paper's evidence) | verdict (holds on) | a − b (spread) | main caveat | "
             "full scale would test |", "|---|---|---|---|---|"]
    point = None
    for r in rows:
        if r["point"] != point:
            point = r["point"]
            lines.append(f"| **{point}** | | | | |")
        margin = ("–" if r["diff"] is None
                  else f"{r['diff']:+.3f} ({r['spread']:.3f} over {r['over']}; {r['reading']})")
        lines.append(f"| {r['claim']} (ch. {int(r['chapter'][:2])}; {r['paper']}) | **{r['verdict']}** "
                     f"({r['zoos']} {r['unit']}) | {margin} | {r['caveat']} | {r['full_scale']} |")
    return "\n".join(lines)


def chapter_verdicts(zoos: dict[str, dict], chapter: str, width: int = 72) -> str:
    """Chapter ``chapter``'s numbers on each zoo (:func:`~foundseg.experiments.across_zoos.table`: each zoo's
    value, mean and spread), then each of its claims (:data:`CLAIMS`) with its :func:`verdict` (and on how many
    zoos it holds taken one at a time), as printable text wrapped at ``width``. ``zoos`` are the evidence's part
    the chapter reads (``"dit"`` for chapter 6)."""
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
    lines = [f"not measured with this chapter's protocol yet: {', '.join(missing)}"] if missing else []
    lines += table(measured, METRICS[chapter])
    claims = [c for c in CLAIMS if int(c.chapter[:2]) == int(chapter[2:])]
    for row in verdicts({KINDS.get(chapter, "zoos"): zoos}, claims):
        lines += textwrap.wrap(row["claim"], width, initial_indent="- ", subsequent_indent="  ")
        margin = "" if row["diff"] is None else f"; a − b {row['diff']:+.3f}, {row['reading'].split(' (')[0]}"
        over = "" if row["over"] == row["unit"] or row["diff"] is None else f" of the {row['over']}"
        unit = "seed by seed" if chapter in KINDS else "zoo by zoo"  # chapter 6 compares shapes-dit's seeds
        lines += textwrap.wrap(f"{row['verdict']} ({unit}: {row['zoos']}){margin}{over}", width,
                               initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)

"""Chapter 4: the ODISE ablation on the shapes world. Each row a feature configuration; per row and head seed,
ODISE's mask-classification head trained on the seen classes, read four ways on the test images, beside the
all-background floor and k-means on the same features.

Variants of each row (:data:`VARIANTS`): ODISE's inference (the head's classes × a frozen CLIP's mask-pooled
classification, :func:`~foundseg.heads.geometric_ensemble`), the head alone, the frozen CLIP alone on the head's
masks, and a per-pixel linear probe of the same features. Features of rows without the implicit captioner are
cached on disk (:mod:`foundseg.cache`) per configuration, image set and model weights. The implicit captioner
is trained jointly with the head, through the UNet, for the first ``captioner_steps`` steps (as in ODISE, which
trains both jointly); then its features are computed once and the head trains on for the remaining steps.
Whole results can be kept too, keyed by the rows, the setting and the models' weights (``results_dir``).
"""
from __future__ import annotations

import json

import numpy as np
import torch

from ..batching import batched
from ..cache import cached_json, cached_tensor, digest, weights_fingerprint
from ..clip.features import clip_features
from ..clip.prompts import class_embeddings
from ..clustering import cluster_features
from ..config import batch_threads
from ..data import CLASSES, SEEN_CLASSES, UNSEEN_CLASSES, sample
from ..data.images import resize_image
from ..diffusion.latents import to_unit_range
from ..diffusion.odise import ImplicitCaptioner, OdiseConfig, fuse, odise_features
from ..eval.metrics import ConfusionMatrix, cluster_scores
from ..heads import (ODISE_ALPHA, ODISE_BETA, class_probabilities, geometric_ensemble, mask_pooled_probabilities,
                     seen_labels, semantic_inference, train_mask_head, train_probe)
from ..maps import resize_maps
from ..models.clip_embeddings import embed_images
from ..progress import progress_bar

CLIP_ONLY = "SAN-like: CLIP features only"
"""The CLIP-only row: its name, and its configuration in a rows mapping (CLIP's dense tokens, no diffusion)."""
CLIP_AT_DIFFUSION_SIZE = "CLIP features only, images at the diffusion rows' size (control)"
"""A control of the CLIP-only row: CLIP reads each image rendered at the diffusion rows' size and resized to its
own input size (bicubic), so it sees no more detail than the UNet does."""
CLIP_ROWS = (CLIP_ONLY, CLIP_AT_DIFFUSION_SIZE)
PAPER_ROWS = {
    "ODISE (implicit captioner, UNet, VAE, noise)": OdiseConfig(text="implicit"),
    "w/o IC (null text)": OdiseConfig(text="null"),
    "w/o (IC & UNet)": OdiseConfig(text="null", unet=False),
    "w/o (IC & VAE), no noise": OdiseConfig(text="null", vae_encoder=False, vae_decoder=False, noise=False),
    CLIP_ONLY: CLIP_ONLY,
}
"""Rows mirroring the paper's Table 1."""
NEW_ROWS = {
    "real caption instead of null text (oracle)": OdiseConfig(text="caption"),
    "multi-timestep (t = 0, 200, 400), null text": OdiseConfig(text="null", timesteps=(0, 200, 400)),
}
"""Rows the paper points to but did not run; the real-caption row reads each test image's true caption."""
VARIANTS = {
    "ensemble": "ODISE's inference: the head's classes × frozen CLIP's mask-pooled classification",
    "head": "the head alone, without the CLIP ensemble",
    "clip": "frozen CLIP only: mask-pooled classification of the head's masks",
    "probe": "per-pixel linear probe of the same features (seen classes only)",
}
"""How each row is read on the test images, by key."""
ENSEMBLE_WEIGHTS = {"ensemble": (ODISE_ALPHA, ODISE_BETA), "head": (0.0, 0.0), "clip": (1.0, 1.0)}
"""CLIP's exponents (seen, unseen) in :func:`~foundseg.heads.geometric_ensemble` for each head variant."""
FLOOR = "all background"
AT_THE_FLOOR = 0.05
"""A row within this mIoU of the all-background floor supports no conclusion."""
PROBE_STEPS = 300
"""The linear probe's training steps (fewer when the head itself trains fewer)."""
FEATURE_SIZE = (16, 16)
"""The grid every row's features are fused to: the UNet's finest output block on a 32 px image."""


def ablation_setting(scale) -> dict:
    """The keyword arguments of :func:`run_ablation` that a :class:`~foundseg.config.Scale` sets: image
    counts, seeds, head and captioner steps, image size and batch sizes.

    >>> from foundseg.config import SCALES
    >>> ablation_setting(SCALES["shapes"])["seeds"], ablation_setting(SCALES["full"])["image_size"]
    ((0, 1, 2), 512)
    """
    return dict(n_train=scale.count("ablation_train"), n_test=scale.count("ablation_test"),
                seeds=tuple(range(scale.count("ablation_seeds"))), steps=scale.count("head_steps"),
                captioner_steps=scale.count("captioner_steps"), image_size=scale.sd_size,
                feature_batch=scale.feature_batch, captioner_batch=scale.captioner_batch)


def _split(split: str, n: int, size: int, seed: int = 0):
    samples = [sample(split, i, seed, size) for i in range(n)]
    images = np.stack([s.image for s in samples])
    masks = np.stack([s.mask for s in samples]).astype(np.int64)
    return images, masks, [s.caption for s in samples]


def row_features(pipe, clip, config, images, captions, cache_dir=None, batch: int = 128) -> torch.Tensor:
    """Fused features (N, C, 16, 16) of ``images`` for a row without implicit captioner, cached per configuration,
    image set and model weights in ``cache_dir`` (see :func:`foundseg.cache.cached_tensor`: float16 values,
    returned on the CPU in float32, fresh or cached alike).

    ``pipe`` is the Stable Diffusion pipeline (unused by the CLIP rows), ``clip`` a :class:`foundseg.models.CLIP`,
    ``config`` an :class:`~foundseg.diffusion.odise.OdiseConfig` or one of :data:`CLIP_ROWS` (CLIP's tokens of
    ``images`` as given); ``captions`` (one per image) serve the ``caption`` text mode; ``batch`` images go through
    the diffusion model (or CLIP) at a time. Without ``cache_dir`` nothing is stored.


    >>> from foundseg.models import load_clip
    >>> from foundseg.data import batch
    >>> images, _, samples = batch("train", range(2))
    >>> feats = row_features(None, load_clip("shapes-clip"), CLIP_ONLY, images, [s.caption for s in samples])
    >>> feats.shape, feats.dtype
    (torch.Size([2, 96, 16, 16]), torch.float32)
    """
    if config in CLIP_ROWS:
        key, models = "clip", [clip.model]
        compute = lambda: clip_features(clip, images, FEATURE_SIZE)  # noqa: E731
    else:
        key, models = config.key(), [pipe.unet, pipe.vae, pipe.text_encoder]

        @torch.no_grad()
        def compute():
            return batched(lambda s: fuse(odise_features(pipe, to_unit_range(images[s]), config, captions[s]),
                                           FEATURE_SIZE), len(images), batch)
    name = f"{key}-{digest(images.tobytes())}-{digest(*(weights_fingerprint(m) for m in models))}"
    return cached_tensor(cache_dir, name, compute)


@torch.no_grad()
def dense_clip_embeddings(clip, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """CLIP's last-layer patch tokens after the final LayerNorm, projected into the joint space, on their grid:
    (N, P, h, w) — what :func:`~foundseg.heads.mask_pooled_probabilities` pools inside each mask (FC-CLIP's
    mask pooling of the frozen CLIP's dense features).

    >>> from foundseg.models import load_clip
    >>> dense_clip_embeddings(load_clip("shapes-clip"), np.zeros((2, 64, 64, 3), np.uint8)).shape  # patch 8
    torch.Size([2, 64, 8, 8])
    """
    model = clip.model
    side = images.shape[1] // model.config.vision_config.patch_size
    tokens = clip_features(clip, images, (side, side), batch)
    return torch.einsum("bdhw,pd->bphw", tokens, model.visual_projection.weight)


def _score(pred: np.ndarray, masks: np.ndarray) -> dict:
    cm = ConfusionMatrix(len(CLASSES) + 1)
    cm.update(pred, masks)
    ids = {n: CLASSES.index(n) + 1 for n in CLASSES}
    return {"seen": cm.compute([ids[n] for n in SEEN_CLASSES])["mIoU"],
            "unseen": cm.compute([ids[n] for n in UNSEEN_CLASSES])["mIoU"], "all": cm.compute()["mIoU"]}


def run_ablation(pipe, clip, rows=None, n_train: int = 600, n_test: int = 200, seeds=(0, 1, 2), steps: int = 400,
                 captioner_steps: int = 100, cache_dir=None, image_size: int = 32, progress: bool = True,
                 feature_batch: int = 128, captioner_batch: int = 32, results_dir=None) -> dict:
    """Train and score every row for every seed. Returns ``{"threads": n, "floor": {metric: value}, "rows":
    {row: {variant: {metric: [per-seed values]}, "kmeans": value}}}`` with metrics ``seen``, ``unseen`` and ``all`` (mIoU over
    the seen classes, the unseen ones, and all classes with background), variants as in :data:`VARIANTS`, the
    floor predicting background everywhere and ``kmeans`` the mean one-to-one cluster mIoU of k-means with the
    true number of regions (an oracle k) on each test image's features (the first seed's, for the captioner
    row), as chapter 3 clusters; ``threads`` is torch's CPU thread count during the run (training on another
    count sums floats in another order, and the numbers move by up to a few hundredths).

    Images are rendered at ``image_size`` px (32 for shapes-sd, 512 for Stable Diffusion 1.5); the CLIP-only
    row, the frozen CLIP of the ensemble and the implicit captioner's CLIP image embeddings use CLIP's own input
    size. Heads, labels and the captioner live on the pipeline's device; ``feature_batch`` images go through a
    model at a time and ``captioner_batch`` images make one training step while the captioner trains (through
    the UNet, so it bounds that row's memory). Batched work: it runs on one thread per core
    (:func:`foundseg.config.batch_threads`).

    ``pipe`` is a Stable Diffusion pipeline and ``clip`` a :class:`foundseg.models.CLIP`; ``rows`` maps row names to
    an :class:`~foundseg.diffusion.odise.OdiseConfig` or one of :data:`CLIP_ROWS` (default: ``PAPER_ROWS`` and
    ``NEW_ROWS``); ``n_train`` and ``n_test`` images come from the train and test splits; ``steps`` are the head's
    training steps per seed, the first ``captioner_steps`` of them training the implicit captioner too;
    ``cache_dir`` keeps features (see :func:`row_features`); ``results_dir`` keeps the results as JSON named by a
    digest of the rows, every argument that changes a number and the models' weights, and returns stored results
    when all of them match (:func:`foundseg.cache.cached_json`).


    >>> from foundseg.models import load_clip, load_sd
    >>> res = run_ablation(load_sd("shapes-sd"), load_clip("shapes-clip"), {CLIP_ONLY: CLIP_ONLY},
    ...                    n_train=4, n_test=2, seeds=(0,), steps=2, progress=False)
    >>> sorted(res["rows"][CLIP_ONLY]), {k: len(v) for k, v in res["rows"][CLIP_ONLY]["ensemble"].items()}
    (['clip', 'ensemble', 'head', 'kmeans', 'probe'], {'seen': 1, 'unseen': 1, 'all': 1})
    """
    rows = rows if rows is not None else {**PAPER_ROWS, **NEW_ROWS}
    if not rows:
        raise ValueError("rows must name at least one configuration")
    if any(trains_captioner(c) for c in rows.values()) and not 0 <= captioner_steps <= steps:
        raise ValueError(f"captioner_steps must be between 0 and steps ({steps}), got {captioner_steps}")
    setting = dict(n_train=n_train, n_test=n_test, seeds=tuple(seeds), steps=steps, captioner_steps=captioner_steps,
                   image_size=image_size, feature_batch=feature_batch, captioner_batch=captioner_batch)
    compute = lambda: _run_rows(pipe, clip, rows, cache_dir=cache_dir, progress=progress, **setting)  # noqa: E731
    if results_dir is None:
        return compute()
    return cached_json(results_dir, results_name(pipe, clip, rows, **setting), compute)


def trains_captioner(config) -> bool:
    """Whether a row trains the implicit captioner (through the UNet, once per seed) rather than reading fixed
    features."""
    return config not in CLIP_ROWS and config.text == "implicit"


def results_name(pipe, clip, rows, **setting) -> str:
    """The name :func:`run_ablation` keeps its results under in ``results_dir`` (``<name>.json``): a digest of
    the ``rows``, the ``setting`` (run_ablation's counts, seeds, steps, size and batches) and the models'
    weights."""
    weights = [weights_fingerprint(m) for m in (pipe.unet, pipe.vae, pipe.text_encoder, clip.model)]
    described = {name: config if config in CLIP_ROWS else config.key() for name, config in rows.items()}
    return "ablation-" + digest(json.dumps([described, setting]), *weights)


def _row_images(config, images: np.ndarray, clip_images: np.ndarray) -> np.ndarray:
    """The images a row reads: CLIP's own renders for the CLIP-only row, the diffusion rows' renders resized to
    CLIP's input size for its control, the diffusion rows' renders otherwise."""
    if config == CLIP_ONLY:
        return clip_images
    if config == CLIP_AT_DIFFUSION_SIZE:
        return np.stack([resize_image(x, clip_images.shape[1:3]) for x in images])
    return images


def _kmeans_miou(feats: torch.Tensor, masks: np.ndarray) -> float:
    return float(np.mean([cluster_scores(cluster_features(f, len(np.unique(m)), size=m.shape).numpy(), m)["miou"]
                          for f, m in zip(feats.cpu(), masks)]))


@batch_threads()
def _run_rows(pipe, clip, rows, n_train, n_test, seeds, steps, captioner_steps, image_size, feature_batch,
              captioner_batch, cache_dir, progress) -> dict:
    tr_images, tr_masks, tr_caps = _split("train", n_train, image_size)
    te_images, te_masks, te_caps = _split("test", n_test, image_size)
    device = pipe.unet.device
    tr_labels = torch.from_numpy(seen_labels(tr_masks)).to(device)
    seen = torch.tensor([c in SEEN_CLASSES for c in CLASSES], device=device)
    probe_classes = torch.tensor([0] + [CLASSES.index(c) + 1 for c in SEEN_CLASSES])  # probe output → class id
    with torch.no_grad():
        seen_text = class_embeddings(clip.model, clip.tokenizer, SEEN_CLASSES).float().to(device)
        all_text = class_embeddings(clip.model, clip.tokenizer, CLASSES).float().to(device)
        clip_size = clip.model.config.vision_config.image_size
        tr_clip_images, te_clip_images = _split("train", n_train, clip_size)[0], _split("test", n_test, clip_size)[0]
        tr_clip = embed_images(clip.model, tr_clip_images, feature_batch).float().to(device)
        te_clip = embed_images(clip.model, te_clip_images, feature_batch).float().to(device)
        te_dense = dense_clip_embeddings(clip, te_clip_images, feature_batch).float().to(device)
    clip_scale = clip.model.logit_scale.exp().item()
    # training's float sums depend on the number of threads: the results say how many computed them
    results = {"threads": torch.get_num_threads(), "floor": _score(np.zeros_like(te_masks), te_masks), "rows": {}}
    for name, config in progress_bar(list(rows.items()), "rows", progress):
        out = {v: {"seen": [], "unseen": [], "all": []} for v in VARIANTS}
        if not trains_captioner(config):  # the features do not depend on the seed: computed (or read) once per row
            tr_feats = row_features(pipe, clip, config, _row_images(config, tr_images, tr_clip_images), tr_caps,
                                    cache_dir, feature_batch).to(device)
            te_feats = row_features(pipe, clip, config, _row_images(config, te_images, te_clip_images), te_caps,
                                    cache_dir, feature_batch).to(device)
        for seed in seeds:
            head_steps = steps
            if trains_captioner(config):
                torch.manual_seed(seed)
                captioner = ImplicitCaptioner(tr_clip.shape[1], pipe.text_encoder.config.hidden_size).to(device)

                def live(images, embeds, cap=captioner):
                    return fuse(odise_features(pipe, to_unit_range(images), config, captioner=cap,
                                               clip_image_embeds=embeds), FEATURE_SIZE)
                head = train_mask_head(lambda idx: live(tr_images[idx.numpy()], tr_clip[idx]), tr_labels, seen_text,
                                       seed, captioner_steps, batch=captioner_batch, captioner=captioner)
                with torch.no_grad():
                    tr_feats = batched(lambda s: live(tr_images[s], tr_clip[s]), n_train, feature_batch)
                    te_feats = batched(lambda s: live(te_images[s], te_clip[s]), n_test, feature_batch)
                head_steps = steps - captioner_steps
            else:
                head = None
            head = train_mask_head(lambda idx: tr_feats[idx], tr_labels, seen_text, seed, head_steps, head=head)
            with torch.no_grad():
                logits, masks = head(te_feats, all_text)
                head_probs = class_probabilities(logits)
                clip_probs = mask_pooled_probabilities(te_dense, masks, all_text, clip_scale)
                for variant, (alpha, beta) in ENSEMBLE_WEIGHTS.items():
                    probs = geometric_ensemble(head_probs, clip_probs, seen, alpha, beta)
                    pred = semantic_inference(probs, masks, te_masks.shape[-2:]).cpu().numpy()
                    for k, v in _score(pred, te_masks).items():
                        out[variant][k].append(v)
            probe = train_probe(tr_feats, tr_labels, 1 + len(SEEN_CLASSES), seed, min(PROBE_STEPS, steps))
            with torch.no_grad():
                logits = resize_maps(probe(te_feats), te_masks.shape[-2:])
                pred = probe_classes[logits.argmax(1).cpu()].numpy()
            for k, v in _score(pred, te_masks).items():
                out["probe"][k].append(v)
            if seed == seeds[0]:  # the first seed's features (the captioner row's change with the seed)
                out["kmeans"] = _kmeans_miou(te_feats, te_masks)
        results["rows"][name] = out
    return results


def summarise(results: dict) -> list[dict]:
    """One row per ablation row and variant (the floor first): mean and standard deviation over seeds of each
    metric, rounded to 3 decimals, the per-seed values (``{metric}_seeds``, rounded to 4), the margin of the mean
    all-class mIoU over the floor's, and whether the row sits ``at_floor`` (within :data:`AT_THE_FLOOR` of it);
    ``results`` as :func:`run_ablation` returns them.


    >>> res = {"floor": {"seen": 0.0, "unseen": 0.0, "all": 0.1},
    ...        "rows": {"CLIP": {"ensemble": {"seen": [0.5, 0.7], "unseen": [0.1, 0.3], "all": [0.4, 0.4]},
    ...                          "head": {"seen": [0.1, 0.1], "unseen": [0.0, 0.0], "all": [0.12, 0.12]}}}}
    >>> rows = summarise(res)
    >>> [(r["row"], r["variant"], r["at_floor"]) for r in rows]
    [('all background', '', True), ('CLIP', 'ensemble', False), ('CLIP', 'head', True)]
    >>> rows[1]["seen_mean"], rows[1]["seen_std"], rows[1]["seen_seeds"], rows[1]["margin"]
    (0.6, 0.1, [0.5, 0.7], 0.3)
    """
    floor = results["floor"]["all"]
    n_seeds = len(next(iter(results["rows"].values()))["ensemble"]["all"])  # the floor has one value per seed too
    out = [{"row": FLOOR, "variant": "", **{f"{k}_{s}": round(float(v), 3) if s == "mean" else 0.0
                                           for k, v in results["floor"].items() for s in ("mean", "std")},
            **{f"{k}_seeds": [round(float(v), 4)] * n_seeds for k, v in results["floor"].items()},
            "margin": 0.0, "at_floor": True}]
    for name, variants in results["rows"].items():
        for variant, scores in variants.items():
            if variant not in VARIANTS:
                continue
            stats = {f"{k}_{stat}": round(float(f(v)), 3) for k, v in scores.items()
                     for stat, f in (("mean", np.mean), ("std", np.std))}
            stats.update({f"{k}_seeds": [round(float(x), 4) for x in v] for k, v in scores.items()})
            margin = round(stats["all_mean"] - floor, 3)
            out.append({"row": name, "variant": variant, **stats, "margin": margin, "at_floor": margin < AT_THE_FLOOR})
    return out

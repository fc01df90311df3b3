"""The ODISE mini-ablation on the shapes world: each row a feature configuration, the same light
open-vocabulary head trained on seen classes, mIoU on seen, unseen and all classes, over several seeds.

Features of rows without the implicit captioner are cached on disk (:mod:`foundseg.cache`) per
configuration, image set and model weights; the implicit captioner is trained jointly with the head (as in
ODISE), so that row computes its features live. Whole results can be kept too, keyed by the rows, the setting
and the models' weights (``results_dir``).
"""
from __future__ import annotations

import json

import numpy as np
import torch

from ..cache import cached_json, cached_tensor, digest, weights_fingerprint
from ..clip.features import clip_features
from ..clip.prompts import class_embeddings
from ..data import CLASSES, SEEN_CLASSES, UNSEEN_CLASSES, sample
from ..diffusion.latents import to_unit_range
from ..diffusion.odise import ImplicitCaptioner, OdiseConfig, fuse, odise_features
from ..heads import predict, seen_labels, train_head
from ..models.clip_embeddings import embed_images
from ..models.scale import batch_threads
from ..progress import progress_bar
from .metrics import ConfusionMatrix

CLIP_ONLY = "clip"
PAPER_ROWS = {
    "ODISE (implicit captioner, UNet, VAE, noise)": OdiseConfig(text="implicit"),
    "w/o IC (null text)": OdiseConfig(text="null"),
    "w/o (IC & UNet)": OdiseConfig(text="null", unet=False),
    "w/o (IC & VAE), no noise": OdiseConfig(text="null", vae_encoder=False, vae_decoder=False, noise=False),
    "SAN-like: CLIP features only": CLIP_ONLY,
}
"""Rows mirroring the paper's Table 1."""
NEW_ROWS = {
    "real caption instead of null text": OdiseConfig(text="caption"),
    "multi-timestep (t = 0, 200, 400), null text": OdiseConfig(text="null", timesteps=(0, 200, 400)),
}
"""Rows the paper points to but did not run."""
FEATURE_SIZE = (8, 8)


def ablation_setting(scale) -> dict:
    """The keyword arguments of :func:`run_ablation` that a :class:`~foundseg.models.scale.Scale` sets: image
    counts, seeds, head steps, image size and batch sizes.

    >>> from foundseg.models.scale import SCALES
    >>> ablation_setting(SCALES["shapes"])["seeds"], ablation_setting(SCALES["full"])["image_size"]
    ((0, 1, 2), 512)
    """
    return dict(n_train=scale.count("ablation_train"), n_test=scale.count("ablation_test"),
                seeds=tuple(range(scale.count("ablation_seeds"))), steps=scale.count("head_steps"),
                image_size=scale.sd_size, feature_batch=scale.feature_batch, captioner_batch=scale.captioner_batch)


def _split(split: str, n: int, size: int, seed: int = 0):
    samples = [sample(split, i, seed, size) for i in range(n)]
    images = np.stack([s.image for s in samples])
    masks = np.stack([s.mask for s in samples]).astype(np.int64)
    return images, masks, [s.caption for s in samples]


def row_features(pipe, clip, config, images, captions, cache_dir=None, batch: int = 128) -> torch.Tensor:
    """Fused features (N, C, 8, 8) of ``images`` for a row without implicit captioner, cached per configuration,
    image set and model weights in ``cache_dir`` (see :func:`foundseg.cache.cached_tensor`: float16 values,
    returned on the CPU in float32, fresh or cached alike).

    ``pipe`` is the Stable Diffusion pipeline (unused by the CLIP-only row), ``clip`` a
    :class:`foundseg.models.CLIP`, ``config`` an :class:`~foundseg.diffusion.odise.OdiseConfig` or
    ``CLIP_ONLY``; ``captions`` (one per image) serve the ``caption`` text mode; ``batch`` images go through
    the diffusion model (or CLIP) at a time. Without ``cache_dir`` nothing is stored.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import batch
    >>> images, _, samples = batch("train", range(2))
    >>> feats = row_features(None, load_clip("shapes-clip"), CLIP_ONLY, images, [s.caption for s in samples])
    >>> feats.shape, feats.dtype
    (torch.Size([2, 96, 8, 8]), torch.float32)
    """
    if config == CLIP_ONLY:
        key, models = CLIP_ONLY, [clip.model]
        compute = lambda: clip_features(clip, images, FEATURE_SIZE)  # noqa: E731
    else:
        key, models = config.key(), [pipe.unet, pipe.vae, pipe.text_encoder]

        @torch.no_grad()
        def compute():
            return torch.cat([fuse(odise_features(pipe, to_unit_range(images[i:i + batch]), config,
                                                  captions[i:i + batch]), FEATURE_SIZE)
                              for i in range(0, len(images), batch)])
    name = f"{key}-{digest(images.tobytes())}-{digest(*(weights_fingerprint(m) for m in models))}"
    return cached_tensor(cache_dir, name, compute)


def _score(pred: np.ndarray, masks: np.ndarray) -> dict:
    cm = ConfusionMatrix(len(CLASSES) + 1)
    cm.update(pred, masks)
    ids = {n: CLASSES.index(n) + 1 for n in CLASSES}
    return {"seen": cm.compute([ids[n] for n in SEEN_CLASSES])["mIoU"],
            "unseen": cm.compute([ids[n] for n in UNSEEN_CLASSES])["mIoU"], "all": cm.compute()["mIoU"]}


def run_ablation(pipe, clip, rows=None, n_train: int = 1500, n_test: int = 500, seeds=(0, 1, 2), steps: int = 300,
                 cache_dir=None, image_size: int = 32, progress: bool = True, feature_batch: int = 128,
                 captioner_batch: int = 32, results_dir=None) -> dict:
    """Train and score every row for every seed; returns {row: {"seen"|"unseen"|"all": [per-seed values]}}.

    Images are rendered at ``image_size`` px (32 for shapes-sd, 512 for Stable Diffusion 1.5); the CLIP-only
    row and the CLIP image embeddings of the implicit captioner use CLIP's own input size. Heads, labels and
    the captioner live on the pipeline's device; ``feature_batch`` images go through a model at a time and
    ``captioner_batch`` images make one training step of the implicit-captioner row (which backpropagates
    through the UNet, so it bounds that row's memory). Batched work: it runs on one thread per core
    (:func:`foundseg.models.scale.batch_threads`).

    ``pipe`` is a Stable Diffusion pipeline and ``clip`` a :class:`foundseg.models.CLIP`; ``rows`` maps row
    names to an :class:`~foundseg.diffusion.odise.OdiseConfig` or ``CLIP_ONLY`` (default: ``PAPER_ROWS`` and
    ``NEW_ROWS``); ``n_train`` and ``n_test`` images come from the train and test splits; ``steps`` are the
    head's training steps per seed; ``cache_dir`` keeps features (see :func:`row_features`); ``results_dir``
    keeps the results as JSON named by a digest of the rows, every argument that changes a number and the
    models' weights, and returns stored results when all of them match (:func:`foundseg.cache.cached_json`).

    >>> from foundseg.models import load_clip, load_sd
    >>> res = run_ablation(load_sd("shapes-sd"), load_clip("shapes-clip"), {"CLIP only": CLIP_ONLY},
    ...                    n_train=4, n_test=2, seeds=(0,), steps=2, progress=False)
    >>> {k: len(v) for k, v in res["CLIP only"].items()}  # one value per seed
    {'seen': 1, 'unseen': 1, 'all': 1}
    """
    rows = rows if rows is not None else {**PAPER_ROWS, **NEW_ROWS}
    if not rows:
        raise ValueError("rows must name at least one configuration")
    setting = dict(n_train=n_train, n_test=n_test, seeds=tuple(seeds), steps=steps, image_size=image_size,
                   feature_batch=feature_batch, captioner_batch=captioner_batch)
    compute = lambda: _run_rows(pipe, clip, rows, cache_dir=cache_dir, progress=progress, **setting)  # noqa: E731
    if results_dir is None:
        return compute()
    return cached_json(results_dir, results_name(pipe, clip, rows, **setting), compute)


def trains_captioner(config) -> bool:
    """Whether a row trains the implicit captioner (through the UNet, once per seed) rather than reading fixed
    features."""
    return config != CLIP_ONLY and config.text == "implicit"


def results_name(pipe, clip, rows, **setting) -> str:
    """The name :func:`run_ablation` keeps its results under in ``results_dir`` (``<name>.json``): a digest of
    the ``rows``, the ``setting`` (run_ablation's counts, seeds, steps, size and batches) and the models'
    weights."""
    weights = [weights_fingerprint(m) for m in (pipe.unet, pipe.vae, pipe.text_encoder, clip.model)]
    described = {name: config if config == CLIP_ONLY else config.key() for name, config in rows.items()}
    return "ablation-" + digest(json.dumps([described, setting]), *weights)


@batch_threads()
def _run_rows(pipe, clip, rows, n_train, n_test, seeds, steps, image_size, feature_batch, captioner_batch, cache_dir,
              progress) -> dict:
    tr_images, tr_masks, tr_caps = _split("train", n_train, image_size)
    te_images, te_masks, te_caps = _split("test", n_test, image_size)
    tr_labels = seen_labels(tr_masks)
    device = pipe.unet.device
    with torch.no_grad():
        seen_text = class_embeddings(clip.model, clip.tokenizer, SEEN_CLASSES).float().to(device)
        all_text = class_embeddings(clip.model, clip.tokenizer, CLASSES).float().to(device)
        clip_size = clip.model.config.vision_config.image_size
        tr_clip_images, te_clip_images = _split("train", n_train, clip_size)[0], _split("test", n_test, clip_size)[0]
        tr_clip = embed_images(clip.model, tr_clip_images, feature_batch).to(device)
        te_clip = embed_images(clip.model, te_clip_images, feature_batch).to(device)
    results = {}
    for name, config in progress_bar(list(rows.items()), "rows", progress):
        scores = {"seen": [], "unseen": [], "all": []}
        implicit = trains_captioner(config)
        if not implicit:  # the features do not depend on the seed: computed (or read) once per row
            clip_row = config == CLIP_ONLY  # CLIP sees the images at its own input size
            tr_feats = row_features(pipe, clip, config, tr_clip_images if clip_row else tr_images, tr_caps,
                                    cache_dir, feature_batch).to(device)
            te_feats = row_features(pipe, clip, config, te_clip_images if clip_row else te_images, te_caps,
                                    cache_dir, feature_batch).to(device)
        for seed in seeds:
            if implicit:
                torch.manual_seed(seed)
                captioner = ImplicitCaptioner(tr_clip.shape[1], pipe.text_encoder.config.hidden_size).to(device)
                vae_unet = lambda imgs, emb, cap=captioner: fuse(  # noqa: E731
                    odise_features(pipe, to_unit_range(imgs), config, captioner=cap, clip_image_embeds=emb), FEATURE_SIZE)
                head = train_head(None, tr_labels, seen_text, seed, steps, batch=captioner_batch, captioner=captioner,
                                  feature_fn=lambda idx: vae_unet(tr_images[idx.numpy()], tr_clip[idx]))
                with torch.no_grad():
                    te_feats = torch.cat([vae_unet(te_images[i:i + feature_batch], te_clip[i:i + feature_batch])
                                          for i in range(0, n_test, feature_batch)])
            else:
                head = train_head(tr_feats, tr_labels, seen_text, seed, steps)
            with torch.no_grad():
                pred = predict(head(te_feats, all_text), te_masks.shape[-2:]).cpu().numpy()
            for k, v in _score(pred, te_masks).items():
                scores[k].append(v)
        results[name] = scores
    return results


def summarise(results: dict) -> list[dict]:
    """Rows of mean and standard deviation per metric, rounded to 3 decimals; ``results`` as
    :func:`run_ablation` returns them.

    >>> rows = summarise({"CLIP only": {"seen": [0.5, 0.7], "unseen": [0.1, 0.3], "all": [0.4, 0.4]}})
    >>> rows[0]["row"], rows[0]["seen_mean"], rows[0]["seen_std"], rows[0]["all_std"]
    ('CLIP only', 0.6, 0.1, 0.0)
    """
    return [{"row": name, **{f"{k}_{stat}": round(float(f(v)), 3) for k, v in scores.items()
                             for stat, f in (("mean", np.mean), ("std", np.std))}}
            for name, scores in results.items()]

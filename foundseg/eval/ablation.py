"""The ODISE mini-ablation on the shapes world: each row a feature configuration, the same light
open-vocabulary head trained on seen classes, mIoU on seen, unseen and all classes, over several seeds.

Features of rows without the implicit captioner are cached on disk per configuration, image set and
model weights; the implicit captioner is trained jointly with the head (as in ODISE), so that row
computes its features live.
"""
from __future__ import annotations

import hashlib
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..clip.prompts import class_embeddings
from ..data import CLASSES, SEEN_CLASSES, UNSEEN_CLASSES, sample
from ..diffusion.capture import to_unit_range
from ..diffusion.odise import ImplicitCaptioner, OdiseConfig, fuse, odise_features
from ..heads import OpenVocabHead, predict, segmentation_loss
from ..models.clip_embeddings import embed_images, pixel_values
from .metrics import ConfusionMatrix
from ..progress import progress_bar

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


def _split(split: str, n: int, size: int, seed: int = 0):
    samples = [sample(split, i, seed, size) for i in range(n)]
    images = np.stack([s.image for s in samples])
    masks = np.stack([s.mask for s in samples]).astype(np.int64)
    return images, masks, [s.caption for s in samples]


def seen_labels(masks: np.ndarray) -> np.ndarray:
    """Training labels: seen classes renumbered 1..S in SEEN_CLASSES order, unseen pixels ignored (255).

    >>> seen_labels(np.array([[0, 1, 4, 7]])).tolist()  # background, circle, diamond and heart (both unseen)
    [[0, 1, 255, 255]]
    """
    out = np.full_like(masks, 255)
    out[masks == 0] = 0
    for j, name in enumerate(SEEN_CLASSES):
        out[masks == CLASSES.index(name) + 1] = j + 1
    return out


@torch.no_grad()
def clip_features(clip, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """Dense features of CLIP's image tower: the last layer's patch tokens on their grid, (N, D, h, w).

    ``clip`` is a :class:`foundseg.models.CLIP`; ``images`` are (N, H, W, 3) uint8, fed ``batch`` at a time.
    The grid is resized to ``FEATURE_SIZE`` (8 × 8).

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import batch
    >>> images = batch("train", range(2))[0]
    >>> clip_features(load_clip("shapes-clip"), images).shape
    torch.Size([2, 96, 8, 8])
    """
    model = clip.model
    interpolate = images.shape[1] != model.config.vision_config.image_size
    out = []
    for i in range(0, len(images), batch):
        tokens = model.vision_model(pixel_values=pixel_values(images[i:i + batch], model.device, model.dtype),
                                    interpolate_pos_encoding=interpolate).last_hidden_state[:, 1:]
        side = int(tokens.shape[1] ** 0.5)
        out.append(model.vision_model.post_layernorm(tokens).transpose(1, 2).reshape(len(tokens), -1, side, side))
    return F.interpolate(torch.cat(out), size=FEATURE_SIZE, mode="bilinear", align_corners=False)


_FINGERPRINTS: "weakref.WeakKeyDictionary[torch.nn.Module, str]" = weakref.WeakKeyDictionary()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short digest of ``module``'s parameter and buffer values (computed once per module object), so that
    features cached for one model are never read for another.

    >>> layer = torch.nn.Linear(2, 2)
    >>> a = weights_fingerprint(layer)
    >>> a == weights_fingerprint(layer), a == weights_fingerprint(torch.nn.Linear(2, 2))
    (True, False)
    """
    if module not in _FINGERPRINTS:
        h = hashlib.sha1()
        for name, value in module.state_dict().items():
            h.update(name.encode())
            h.update(value.detach().float().cpu().numpy().tobytes())
        _FINGERPRINTS[module] = h.hexdigest()[:10]
    return _FINGERPRINTS[module]


def cached_features(pipe, clip, config, images, captions, cache_dir=None, batch: int = 128) -> torch.Tensor:
    """Fused features (N, C, 8, 8) of ``images`` for a row without implicit captioner, cached per configuration,
    image set and model weights in ``cache_dir`` (float16).

    ``pipe`` is the Stable Diffusion pipeline (unused by the CLIP-only row), ``clip`` a
    :class:`foundseg.models.CLIP`, ``config`` an :class:`~foundseg.diffusion.odise.OdiseConfig` or
    ``CLIP_ONLY``; ``captions`` (one per image) serve the ``caption`` text mode; ``batch`` images go through
    the diffusion model (or CLIP) at a time. Without ``cache_dir`` nothing is stored. Features come back on the
    CPU in float32.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import batch
    >>> images, _, samples = batch("train", range(2))
    >>> feats = cached_features(None, load_clip("shapes-clip"), CLIP_ONLY, images, [s.caption for s in samples])
    >>> feats.shape, feats.dtype
    (torch.Size([2, 96, 8, 8]), torch.float32)
    """
    digest = hashlib.sha1(images.tobytes()).hexdigest()[:10]
    if config == CLIP_ONLY:
        key, models = CLIP_ONLY, [clip.model]
    else:
        key, models = config.key(), [pipe.unet, pipe.vae, pipe.text_encoder]
    path = None
    if cache_dir:
        weights = hashlib.sha1("".join(weights_fingerprint(m) for m in models).encode()).hexdigest()[:10]
        path = Path(cache_dir) / f"{key}-{digest}-{weights}.pt"
    if path is not None and path.exists():
        return torch.load(path).float()  # on the CPU, as stored
    if config == CLIP_ONLY:
        feats = clip_features(clip, images)
    else:
        with torch.no_grad():
            feats = torch.cat([fuse(odise_features(pipe, to_unit_range(images[i:i + batch]), config, captions[i:i + batch]),
                                    FEATURE_SIZE) for i in range(0, len(images), batch)])
    feats = feats.cpu().half()  # stored and returned in float16 alike, so a cached run equals a fresh one
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(feats, tmp)
        tmp.replace(path)
    return feats.float()


def _score(pred: np.ndarray, masks: np.ndarray) -> dict:
    cm = ConfusionMatrix(len(CLASSES) + 1)
    cm.update(pred, masks)
    ids = {n: CLASSES.index(n) + 1 for n in CLASSES}
    return {"seen": cm.compute([ids[n] for n in SEEN_CLASSES])["mIoU"],
            "unseen": cm.compute([ids[n] for n in UNSEEN_CLASSES])["mIoU"], "all": cm.compute()["mIoU"]}


def train_head(train_feats, train_labels, seen_text, seed: int, steps: int = 300, batch: int = 64, lr: float = 2e-3,
               feature_fn=None, captioner=None):
    """Train an :class:`OpenVocabHead` (and the captioner, if given) on seen-class labels.

    ``feature_fn(indices)`` computes features live (the implicit-captioner row); else ``train_feats`` is used.
    ``train_labels`` are :func:`seen_labels` (N, H, W) int64, ``seen_text`` the seen classes' text embeddings
    (S, P); ``seed``, ``steps``, ``batch`` and ``lr`` set the AdamW run. The head is built on the device of the
    features and returned there, in eval mode.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import SEEN_CLASSES, batch
    >>> clip = load_clip("shapes-clip")
    >>> images, masks, _ = batch("train", range(4))
    >>> feats = clip_features(clip, images)
    >>> text = class_embeddings(clip.model, clip.tokenizer, SEEN_CLASSES)
    >>> head = train_head(feats, seen_labels(masks.astype(np.int64)), text, seed=0, steps=2, batch=4)
    >>> head.training, head(feats, text).shape  # background + the 6 seen classes
    (False, torch.Size([4, 7, 8, 8]))
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    probe = feature_fn(torch.arange(2)) if feature_fn else train_feats[:2]
    head = OpenVocabHead(probe.shape[1], seen_text.shape[1]).to(probe.device)
    params = list(head.parameters()) + (list(captioner.parameters()) if captioner else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    labels = torch.from_numpy(train_labels).to(probe.device)
    n = len(labels)
    for _ in range(steps):
        idx = torch.randint(n, (batch,), generator=g)
        feats = feature_fn(idx) if feature_fn else train_feats[idx]
        loss = segmentation_loss(head(feats, seen_text), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return head.eval()


def run_ablation(pipe, clip, rows=None, n_train: int = 1500, n_test: int = 500, seeds=(0, 1, 2), steps: int = 300,
                 cache_dir=None, image_size: int = 32, progress: bool = True, feature_batch: int = 128,
                 captioner_batch: int = 32) -> dict:
    """Train and score every row for every seed; returns {row: {"seen"|"unseen"|"all": [per-seed values]}}.

    Images are rendered at ``image_size`` px (32 for shapes-sd, 512 for Stable Diffusion 1.5); the CLIP-only
    row and the CLIP image embeddings of the implicit captioner use CLIP's own input size. Heads, labels and
    the captioner live on the pipeline's device; ``feature_batch`` images go through a model at a time and
    ``captioner_batch`` images make one training step of the implicit-captioner row (which backpropagates
    through the UNet, so it bounds that row's memory).

    ``pipe`` is a Stable Diffusion pipeline and ``clip`` a :class:`foundseg.models.CLIP`; ``rows`` maps row
    names to an :class:`~foundseg.diffusion.odise.OdiseConfig` or ``CLIP_ONLY`` (default: ``PAPER_ROWS`` and
    ``NEW_ROWS``); ``n_train`` and ``n_test`` images come from the train and test splits; ``steps`` are the
    head's training steps per seed; ``cache_dir`` keeps features (see :func:`cached_features`).

    >>> from foundseg.models import load_clip, load_sd
    >>> res = run_ablation(load_sd("shapes-sd"), load_clip("shapes-clip"), {"CLIP only": CLIP_ONLY},
    ...                    n_train=4, n_test=2, seeds=(0,), steps=2, progress=False)
    >>> {k: len(v) for k, v in res["CLIP only"].items()}  # one value per seed
    {'seen': 1, 'unseen': 1, 'all': 1}
    """
    rows = rows if rows is not None else {**PAPER_ROWS, **NEW_ROWS}
    if not rows:
        raise ValueError("rows must name at least one configuration")
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
        for seed in seeds:
            if config != CLIP_ONLY and config.text == "implicit":
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
                clip_row = config == CLIP_ONLY  # CLIP sees the images at its own input size
                tr_feats = cached_features(pipe, clip, config, tr_clip_images if clip_row else tr_images, tr_caps,
                                           cache_dir, feature_batch).to(device)
                te_feats = cached_features(pipe, clip, config, te_clip_images if clip_row else te_images, te_caps,
                                           cache_dir, feature_batch).to(device)
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

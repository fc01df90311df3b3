"""Training an open-vocabulary head on the seen classes' labels, the unseen classes' pixels left out."""
from __future__ import annotations

import numpy as np
import torch

from ..data import CLASSES, SEEN_CLASSES
from .open_vocab import OpenVocabHead, segmentation_loss


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


def train_head(train_feats, train_labels, seen_text, seed: int, steps: int = 300, batch: int = 64, lr: float = 2e-3,
               feature_fn=None, captioner=None) -> OpenVocabHead:
    """Train an :class:`OpenVocabHead` (and the captioner, if given) on seen-class labels.

    ``feature_fn(indices)`` computes features live (the implicit-captioner row); else ``train_feats`` is used.
    ``train_labels`` are :func:`seen_labels` (N, H, W) int64, ``seen_text`` the seen classes' text embeddings
    (S, P); ``seed``, ``steps``, ``batch`` and ``lr`` set the AdamW run. The head is built on the device of the
    features and returned there, in eval mode.

    >>> from foundseg.models import load_clip
    >>> from foundseg.data import batch
    >>> from foundseg.clip import class_embeddings
    >>> from foundseg.clip.features import clip_features
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

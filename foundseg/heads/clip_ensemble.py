"""ODISE's inference ensemble: each mask's class probabilities combined with a frozen CLIP's classification of
the mask-pooled region.

ODISE (and FC-CLIP after it) classifies every predicted mask twice: by the trained head, and by a frozen CLIP
that pools its dense image embeddings inside the mask. The two are combined geometrically, with CLIP's share
``alpha`` for classes seen in training and ``beta`` for unseen ones: p = p_head^(1 − w) · p_clip^w. ODISE's
demo and evaluation use alpha = 0.35, beta = 0.65; FC-CLIP uses 0.4 and 0.8. Background and "no object" stay
the head's; the ensemble redistributes the head's object mass over the classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..maps import resize_maps

ODISE_ALPHA, ODISE_BETA = 0.35, 0.65
"""CLIP's exponent for seen and for unseen classes in ODISE's ensemble (``clip_head.alpha`` / ``.beta``)."""


def mask_pooled_probabilities(dense_embeds: torch.Tensor, mask_logits: torch.Tensor, text_embeds: torch.Tensor,
                              logit_scale: float) -> torch.Tensor:
    """Frozen CLIP's class probabilities (B, Q, K) for each mask: the dense image embeddings (B, P, h', w'),
    averaged with the mask's sigmoid as weights (resized to their grid), scored by cosine similarity against the
    K text embeddings (K, P) times ``logit_scale`` (CLIP's own), softmax over the K classes.

    >>> dense = torch.zeros(1, 2, 2, 2)
    >>> dense[0, 0, :, 0], dense[0, 1, :, 1] = 1.0, 1.0      # left column says class 0, right column class 1
    >>> masks = torch.full((1, 1, 2, 2), -9.0)
    >>> masks[0, 0, :, 1] = 9.0                              # one mask over the right column
    >>> mask_pooled_probabilities(dense, masks, torch.eye(2), 100.0).round(decimals=3).tolist()
    [[[0.0, 1.0]]]
    """
    weights = resize_maps(mask_logits, dense_embeds.shape[-2:], normalise="sigmoid")
    pooled = torch.einsum("bqhw,bphw->bqp", weights, dense_embeds) / weights.sum((2, 3))[..., None].clamp(min=1e-6)
    sims = F.normalize(pooled, dim=-1) @ F.normalize(text_embeds, dim=-1).T
    return (logit_scale * sims).softmax(-1)


def geometric_ensemble(head_probs: torch.Tensor, clip_probs: torch.Tensor, seen: torch.Tensor,
                       alpha: float = ODISE_ALPHA, beta: float = ODISE_BETA) -> torch.Tensor:
    """Class probabilities (B, Q, 1 + K) of background and K classes after ODISE's geometric ensemble.

    ``head_probs`` (B, Q, 1 + K) are the head's probabilities of background and classes (no object left out, see
    :func:`~foundseg.heads.mask_classification.class_probabilities`); ``clip_probs`` (B, Q, K) CLIP's for the
    classes; ``seen`` a (K,) boolean tensor marking the classes seen in training. Background keeps the head's
    probability; the head's class probabilities, renormalised, are combined with CLIP's as
    p^(1 − w) · p_clip^w with w = ``alpha`` for seen and ``beta`` for unseen classes, renormalised, and given the
    head's class mass back. ``alpha = beta = 0`` returns the head's probabilities; ``1`` gives CLIP's
    classification inside the head's class mass (the "frozen CLIP only" row).

    >>> head = torch.tensor([[[0.1, 0.8, 0.1]]])             # background 0.1, seen class 0.8, unseen class 0.1
    >>> clip = torch.tensor([[[0.1, 0.9]]])                  # CLIP says: the unseen class
    >>> seen = torch.tensor([True, False])
    >>> geometric_ensemble(head, clip, seen, 0.0, 0.0).tolist() == head.tolist()
    True
    >>> [round(p, 2) for p in geometric_ensemble(head, clip, seen, 1.0, 1.0)[0, 0].tolist()]
    [0.1, 0.09, 0.81]
    """
    if clip_probs.shape[-1] != head_probs.shape[-1] - 1 or seen.shape != clip_probs.shape[-1:]:
        raise ValueError(f"clip_probs must have one column per class of head_probs minus background and seen one "
                         f"flag per class; got {tuple(head_probs.shape)}, {tuple(clip_probs.shape)}, {tuple(seen.shape)}")
    background, classes = head_probs[..., :1], head_probs[..., 1:]
    mass = classes.sum(-1, keepdim=True)
    w = torch.where(seen, torch.tensor(alpha), torch.tensor(beta)).to(classes)
    eps = 1e-8
    log_p = (1 - w) * (classes / mass.clamp(min=eps) + eps).log() + w * (clip_probs + eps).log()
    return torch.cat([background, mass * log_p.softmax(-1)], -1)

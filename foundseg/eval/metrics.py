"""Segmentation and localisation metrics.

:class:`ConfusionMatrix` follows detectron2's SemSegEvaluator and mmseg's
IoUMetric: one matrix accumulated over the whole dataset, pixels labelled
``ignore_index`` skipped, classes without ground-truth pixels left out of the
means. Matrices from several processes add up exactly.

torchmetrics' ``MulticlassJaccardIndex`` accumulates the same matrix, but its macro average counts a class
that is predicted yet absent from the ground truth as IoU 0 instead of leaving it out (classes absent from
both are left out by both): the two agree exactly when every predicted class occurs in the ground truth, and
torchmetrics is lower otherwise (``tests/test_metrics.py`` shows both).
"""
from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Streaming (num_classes × num_classes) confusion matrix; rows are ground truth, columns predictions.

    ``num_classes`` counts the labels 0 .. num_classes - 1; pixels whose ground truth is ``ignore_index``
    are skipped.

    >>> cm = ConfusionMatrix(2)
    >>> cm.update(np.array([[0, 1]]), np.array([[0, 0]]))
    >>> cm.compute()["mIoU"]
    0.5
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes, self.ignore_index = int(num_classes), ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred, target) -> None:
        """Add one prediction/ground-truth pair (any matching shape of integer labels).

        >>> cm = ConfusionMatrix(3)
        >>> cm.update(np.array([0, 2, 1]), np.array([0, 2, 255]))  # the last pixel is ignored
        >>> int(cm.matrix.sum())
        2
        """
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {pred.shape} does not match target shape {target.shape}")
        keep = target != self.ignore_index
        p, t = pred[keep].astype(np.int64), target[keep].astype(np.int64)
        for name, arr in (("pred", p), ("target", t)):
            if arr.size and (arr.min() < 0 or arr.max() >= self.num_classes):
                raise ValueError(f"{name} holds labels outside [0, {self.num_classes}) "
                                 f"(found {arr.min()}..{arr.max()}; ignore_index={self.ignore_index})")
        self.matrix += np.bincount(t * self.num_classes + p, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix of the same classes (e.g. from another process).

        >>> a, b = ConfusionMatrix(2), ConfusionMatrix(2)
        >>> a.update(np.array([0, 1]), np.array([0, 1]))
        >>> b.update(np.array([1]), np.array([0]))
        >>> a.merge(b).matrix.tolist()
        [[1, 1], [0, 1]]
        """
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class matrix into {self.num_classes}-class one")
        self.matrix += other.matrix
        return self

    def compute(self, class_subset=None) -> dict:
        """mIoU, fwIoU, mAcc, pAcc and per-class IoU (NaN where a class has no ground truth).

        ``class_subset`` restricts the means to those class indices (e.g. seen or unseen classes).

        >>> cm = ConfusionMatrix(3)
        >>> cm.update(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]))
        >>> [round(v, 3) for v in cm.compute()["IoU"]]
        [1.0, 0.5, 0.5]
        >>> cm.compute(class_subset=[1, 2])["mIoU"]
        0.5
        """
        m = self.matrix.astype(np.float64)
        tp, gt, pr = np.diag(m), m.sum(1), m.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(gt > 0, tp / (gt + pr - tp), np.nan)
            acc = np.where(gt > 0, tp / gt, np.nan)
        sel = np.arange(self.num_classes) if class_subset is None else np.asarray(list(class_subset))
        valid = sel[gt[sel] > 0]
        total = gt.sum()
        return {
            "mIoU": float(np.mean(iou[valid])) if len(valid) else float("nan"),
            "fwIoU": float((gt[valid] / gt[valid].sum() * iou[valid]).sum()) if len(valid) else float("nan"),
            "mAcc": float(np.mean(acc[valid])) if len(valid) else float("nan"),
            "pAcc": float(tp.sum() / total) if total else float("nan"),
            "IoU": iou.tolist(),
        }


def miou(preds, targets, num_classes: int, ignore_index: int = 255) -> float:
    """Dataset-level mIoU of paired label maps (one confusion matrix over all of them).

    ``preds`` and ``targets`` are equally long sequences of integer label maps; ``num_classes`` and
    ``ignore_index`` are as in :class:`ConfusionMatrix`.

    >>> preds = [np.array([[0, 1], [1, 1]])]
    >>> targets = [np.array([[0, 1], [0, 1]])]
    >>> round(miou(preds, targets, num_classes=2), 3)  # IoU 1/2 (background) and 2/3 (class 1)
    0.583
    """
    cm = ConfusionMatrix(num_classes, ignore_index)
    for p, t in zip(preds, targets, strict=True):
        cm.update(p, t)
    return cm.compute()["mIoU"]


def binary_iou(pred, target) -> float:
    """IoU of two boolean masks; 1.0 when both are empty.

    >>> top, left = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    >>> top[:2], left[:, :2] = True, True
    >>> round(binary_iou(top, left), 3)  # 4 shared pixels of 12
    0.333
    >>> binary_iou(np.zeros((4, 4)), np.zeros((4, 4)))
    1.0
    """
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} does not match target shape {target.shape}")
    union = np.logical_or(pred, target).sum()
    return float(np.logical_and(pred, target).sum() / union) if union else 1.0


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (Mann–Whitney U with tied ranks averaged).

    ``scores`` are any real values, ``labels`` the matching booleans (both flattened); both classes must occur.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])  # 3 of the 4 positive-negative pairs are ordered
    0.75
    >>> roc_auc([0.5, 0.5], [0, 1])
    0.5
    """
    scores, labels = np.asarray(scores, np.float64).ravel(), np.asarray(labels, bool).ravel()
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("labels must contain both positives and negatives")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_or_nan(values) -> float:
    """The mean of ``values`` as a float, or NaN (without numpy's warning) when there are none.

    >>> mean_or_nan([0.5, 1.0]), mean_or_nan([])
    (0.75, nan)
    """
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


DISC_RADIUS = 0.3
"""The book's trivial baseline: a centred disc whose radius is 0.3 of the shorter side, chosen without
looking at any mask (it covers 28 % of a square image)."""


def centred_disc(shape: tuple[int, int], radius: float = DISC_RADIUS) -> np.ndarray:
    """A centred disc of ``radius`` (fraction of the shorter side): the trivial localisation baseline.

    ``shape`` is the mask's (H, W); the result is a boolean (H, W) mask. The default radius is
    :data:`DISC_RADIUS`, the one every chapter, the command line and the model cards compare with.

    >>> centred_disc((4, 4), 0.25).astype(int)
    array([[0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    return (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (radius * min(h, w)) ** 2


def cluster_scores(clusters, target, ignore_index: int = 255) -> dict:
    """Quality of an unsupervised clustering against ground truth.

    ``miou``: clusters matched one-to-one to classes by the Hungarian algorithm on their overlap, then mIoU
    over the ground-truth classes present (unmatched classes score 0); ``purity``: share of pixels whose
    cluster's majority class is their own class. ``clusters`` and ``target`` are integer maps of one shape;
    pixels whose target is ``ignore_index`` are skipped.

    >>> clusters = np.array([[5, 5, 5, 7]])  # cluster ids need not match class ids
    >>> target = np.array([[0, 0, 1, 1]])
    >>> {k: round(v, 3) for k, v in cluster_scores(clusters, target).items()}  # IoU 2/3 and 1/2
    {'miou': 0.583, 'purity': 0.75}
    """
    from scipy.optimize import linear_sum_assignment

    clusters, target = np.asarray(clusters).ravel(), np.asarray(target).ravel()
    if clusters.shape != target.shape:
        raise ValueError(f"clusters shape {clusters.shape} does not match target shape {target.shape}")
    keep = target != ignore_index
    c, t = clusters[keep], target[keep]
    cs, ts = np.unique(c), np.unique(t)
    overlap = np.array([[np.sum((c == a) & (t == b)) for b in ts] for a in cs], dtype=np.float64)
    rows, cols = linear_sum_assignment(-overlap)
    ious = np.zeros(len(ts))
    for r, col in zip(rows, cols):
        inter = overlap[r, col]
        ious[col] = inter / (np.sum(c == cs[r]) + np.sum(t == ts[col]) - inter)
    return {"miou": float(ious.mean()), "purity": float(overlap.max(1).sum() / len(t))}

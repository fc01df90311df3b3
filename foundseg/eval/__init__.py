"""Evaluation: dataset-level confusion matrix metrics, binary IoU, AUC, baselines, the generation judge."""
from .judge import classify_shape, colour_masks, judge
from .metrics import ConfusionMatrix, binary_iou, centred_disc, miou, roc_auc

__all__ = ["ConfusionMatrix", "binary_iou", "centred_disc", "classify_shape", "colour_masks", "judge", "miou",
           "roc_auc"]

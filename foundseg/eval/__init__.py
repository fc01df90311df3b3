"""Evaluation: dataset-level confusion matrix metrics, binary IoU, AUC, baselines, the generation judge."""
from .judge import classify_shape, colour_masks, judge
from .localisation import dense_clip_method, disc_method, evaluate_localisation, gradcam_method
from .metrics import ConfusionMatrix, binary_iou, centred_disc, miou, roc_auc

__all__ = ["ConfusionMatrix", "binary_iou", "centred_disc", "classify_shape", "colour_masks", "dense_clip_method",
           "disc_method", "evaluate_localisation", "gradcam_method", "judge", "miou",
           "roc_auc"]

"""Evaluation: dataset-level metrics, localisation and attention scoring, baselines, the generation judge."""
from .attention import by_resolution, cluster_quality, denoise_curve, generated_scenes, map_iou, renoise_curve
from .judge import classify_shape, colour_masks, judge
from .localisation import dense_clip_method, disc_method, evaluate_localisation, gradcam_method
from .metrics import ConfusionMatrix, binary_iou, centred_disc, cluster_scores, mean_or_nan, minmax_scale, miou, roc_auc

__all__ = ["ConfusionMatrix", "binary_iou", "by_resolution", "centred_disc", "classify_shape", "cluster_scores",
           "colour_masks", "dense_clip_method", "denoise_curve", "disc_method", "evaluate_localisation",
           "generated_scenes", "gradcam_method", "judge", "map_iou", "minmax_scale", "miou", "renoise_curve", "roc_auc"]

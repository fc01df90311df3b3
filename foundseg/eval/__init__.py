"""Evaluation: segmentation scoring of localisation methods, attention scoring, baselines, the generation judge,
the chapters' numbers across independently trained zoos."""
from ..maps import minmax
from .attention import (by_resolution, cluster_qualities, cluster_quality, denoise_curve, generated_scenes,
                        last_step_scores, map_iou, renoise_curve)
from .judge import classify_shape, colour_masks, judge
from .metrics import (DISC_RADIUS, ConfusionMatrix, binary_iou, centred_disc, cluster_scores, mean_or_nan, miou,
                      roc_auc)
from .segmentation import dense_clip_method, disc_method, evaluate, gradcam_method, named_method
from .spread import compare

__all__ = ["DISC_RADIUS", "ConfusionMatrix", "binary_iou", "by_resolution", "centred_disc", "classify_shape",
           "cluster_qualities", "compare", "cluster_quality", "cluster_scores", "colour_masks", "dense_clip_method", "denoise_curve",
           "disc_method", "evaluate", "generated_scenes", "gradcam_method", "judge", "last_step_scores", "map_iou",
           "mean_or_nan", "minmax", "miou", "named_method", "renoise_curve", "roc_auc"]

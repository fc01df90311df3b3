"""CLIP localisation: Grad-CAM (CLIP-ES), dense CLIP (MaskCLIP), prompts, masks."""
from .dense import dense_clip
from .gradcam import TARGETS, CAMResult, gradcam, gradcam_by_layer
from .masks import THRESHOLD_METHODS, labels_from_maps, otsu_threshold, semantic_map, threshold_maps
from .prompts import (CLIP_ES_BACKGROUND, DEFAULT_TEMPLATES, ENSEMBLE_TEMPLATES, SHAPES_BACKGROUND, ClassPrompts,
                      class_embeddings)

__all__ = ["CAMResult", "CLIP_ES_BACKGROUND", "ClassPrompts", "DEFAULT_TEMPLATES", "ENSEMBLE_TEMPLATES", "SHAPES_BACKGROUND",
           "TARGETS", "THRESHOLD_METHODS", "class_embeddings", "dense_clip", "gradcam", "gradcam_by_layer", "labels_from_maps", "otsu_threshold",
           "semantic_map", "threshold_maps"]

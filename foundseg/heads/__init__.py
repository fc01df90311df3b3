"""Heads trained on frozen foundation-model features: ODISE's mask classification and its CLIP ensemble, and
the linear probe every head is measured against."""
from .clip_ensemble import ODISE_ALPHA, ODISE_BETA, geometric_ensemble, mask_pooled_probabilities
from .mask_classification import MaskClassificationHead, class_probabilities, semantic_inference, set_loss
from .probe import LinearProbe, segmentation_loss, train_probe
from .train import seen_labels, train_mask_head

__all__ = ["LinearProbe", "MaskClassificationHead", "ODISE_ALPHA", "ODISE_BETA", "class_probabilities",
           "geometric_ensemble", "mask_pooled_probabilities", "seen_labels", "segmentation_loss", "semantic_inference",
           "set_loss", "train_mask_head", "train_probe"]

"""Figures and overlays."""
from .figures import class_colours, image_grid, overlay_heatmap, overlay_labels, wrap

__all__ = ["class_colours", "image_grid", "overlay_heatmap", "overlay_labels", "wrap"]

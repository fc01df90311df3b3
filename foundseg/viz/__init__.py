"""Figures, overlays and ipywidgets explorers."""
from .explorers import cam_explorer, cam_panel
from .figures import class_colours, image_grid, layer_panels, map_to_image, overlay_heatmap, overlay_labels, wrap

__all__ = ["cam_explorer", "cam_panel", "class_colours", "image_grid", "layer_panels", "map_to_image", "overlay_heatmap", "overlay_labels", "wrap"]

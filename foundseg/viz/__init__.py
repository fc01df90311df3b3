"""Figures, overlays, printed tables and ipywidgets explorers."""
from .explorers import cam_explorer, cam_panel
from .figures import (PAGE_WIDTH, SHAPES_KEY, class_colours, cluster_shades, colour_bar, image_grid, layer_panels,
                      legible, map_panels, map_to_image, overlay_heatmap, overlay_labels, wrap, zoo_spread)
from ..tables import text_table

__all__ = ["PAGE_WIDTH", "SHAPES_KEY", "cam_explorer", "cam_panel", "class_colours", "cluster_shades", "colour_bar",
           "image_grid", "layer_panels", "legible", "map_panels", "map_to_image", "overlay_heatmap", "overlay_labels",
           "text_table", "wrap", "zoo_spread"]

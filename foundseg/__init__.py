"""foundseg: CLIP and Stable Diffusion for dense recognition, measured.

Subpackages, lowest first: ``data`` (shapes world, image input) → ``models``
(loader, zoo) → ``clip`` / ``diffusion`` → ``eval`` → ``viz``.
"""
__version__ = "0.1.0"

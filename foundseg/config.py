"""Run settings: the two scales, defined in one place (models, image sizes, dtype, batch sizes and the counts
chapters use), and the CPU thread policy.

``FOUNDSEG_SCALE`` picks the scale (``shapes``, the default, or ``full``). Three more environment variables
change a scale without editing it:

- ``FOUNDSEG_CLIP_MODEL`` / ``FOUNDSEG_SD_MODEL`` / ``FOUNDSEG_DIT_MODEL`` point the scale's CLIP / Stable
  Diffusion / diffusion transformer at another hub id or a local directory (a lab's mirror, a fine-tuned checkpoint, the rehearsal's random-weight models);
- ``FOUNDSEG_MAX_COUNT`` caps every count (images, steps, seeds) at that number — to check that a chapter runs,
  never to produce its numbers.

>>> from unittest import mock
>>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="full", FOUNDSEG_MAX_COUNT="2"):
...     s = current_scale()
>>> s.clip_model, s.clip_size, s.sd_size, s.count("cam_images")
('openai/clip-vit-base-patch16', 224, 512, 2)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import torch

FULL_SCALE = {"clip": "openai/clip-vit-base-patch16", "sd": "stable-diffusion-v1-5/stable-diffusion-v1-5",
              "dit": "stabilityai/stable-diffusion-3-medium-diffusers"}
"""The real checkpoints each chapter switches to at full scale (``dit``: a Stable Diffusion pipeline whose
denoiser is a diffusion transformer, loaded by :func:`foundseg.models.load_sd`)."""

@dataclass(frozen=True)
class Scale:
    """Everything a chapter or the command line needs to know about a scale.

    Args:
        name: ``shapes`` or ``full``.
        clip_model / sd_model / dit_model: the models, as :func:`foundseg.models.load` takes them (``dit_model``
            is a Stable Diffusion pipeline with a diffusion transformer: shapes-dit, SD3-medium).
        clip_size: the pixel size shapes-world images are rendered at for CLIP (its input size).
        sd_size: the pixel size shapes-world images are rendered at for Stable Diffusion.
        sd_half: run Stable Diffusion in float16 on CUDA (it stays float32 on a CPU).
        feature_batch: images per forward pass when features are extracted in bulk.
        captioner_batch: images per training step of the implicit captioner (it backpropagates through the UNet).
        counts: images, steps and seeds of each experiment, by the names in :data:`COUNTS`.
        cpu_threads: torch's CPU threads for this scale's models (None: torch's default, one per core). The
            shapes world's models run their per-image calls on one, which barely slows them on a quiet machine
            and keeps them from collapsing on a busy one (``benchmarks/README.md``, ``thread_policy.py``);
            batched work uses :func:`batch_threads`.
    """

    name: str
    clip_model: str
    sd_model: str
    dit_model: str
    clip_size: int
    sd_size: int
    sd_half: bool
    feature_batch: int
    captioner_batch: int
    counts: MappingProxyType = field(repr=False)
    cpu_threads: int | None = None
    max_count: int | None = None

    def count(self, name: str) -> int:
        """The count ``name`` (one of :data:`COUNTS`), capped by ``FOUNDSEG_MAX_COUNT`` when set.

        >>> SCALES["shapes"].count("scenes"), replace(SCALES["shapes"], max_count=3).count("scenes")
        (100, 3)
        """
        if name not in self.counts:
            raise ValueError(f"name must be one of {COUNTS}, got {name!r}")
        value = self.counts[name]
        return value if self.max_count is None else min(value, self.max_count)

    def sd_dtype(self, device) -> torch.dtype:
        """The dtype Stable Diffusion runs in on ``device``: float16 on CUDA when ``sd_half``, else float32.

        >>> SCALES["full"].sd_dtype("cuda"), SCALES["full"].sd_dtype("cpu")
        (torch.float16, torch.float32)
        """
        return torch.float16 if self.sd_half and torch.device(device).type == "cuda" else torch.float32


SCALES = {
    "shapes": Scale("shapes", "shapes-clip", "shapes-sd", "shapes-dit", clip_size=64, sd_size=32, sd_half=False,
                    feature_batch=128, captioner_batch=32, counts=MappingProxyType(dict(
                        cam_images=500, layer_images=200, scenes=100, gen_steps=20, denoise_steps=10,
                        cluster_images=100, ablation_train=600, ablation_test=200, ablation_seeds=3,
                        head_steps=400, captioner_steps=100, classifier_images=200)), cpu_threads=1),
    "full": Scale("full", FULL_SCALE["clip"], FULL_SCALE["sd"], FULL_SCALE["dit"], clip_size=224, sd_size=512, sd_half=True,
                  feature_batch=8, captioner_batch=4, counts=MappingProxyType(dict(
                      cam_images=500, layer_images=200, scenes=50, gen_steps=50, denoise_steps=20,
                      cluster_images=50, ablation_train=1000, ablation_test=300, ablation_seeds=3,
                      head_steps=600, captioner_steps=200, classifier_images=100))),
}
"""The two scales as shipped; :func:`current_scale` applies the environment's overrides."""
COUNTS = tuple(SCALES["shapes"].counts)
"""The names of the counts a scale sets: images, steps and seeds of each experiment."""


def scale_name() -> str:
    """The scale a notebook runs at: ``FOUNDSEG_SCALE`` = ``shapes`` (default) or ``full``.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="full"):
    ...     scale_name()
    'full'
    """
    value = os.environ.get("FOUNDSEG_SCALE", "shapes").strip().lower()
    if value not in SCALES:
        raise ValueError(f"FOUNDSEG_SCALE must be 'shapes' or 'full', got {value!r}")
    return value


def current_scale() -> Scale:
    """The :class:`Scale` picked by ``FOUNDSEG_SCALE``, with ``FOUNDSEG_CLIP_MODEL``, ``FOUNDSEG_SD_MODEL``,
    ``FOUNDSEG_DIT_MODEL`` and ``FOUNDSEG_MAX_COUNT`` applied.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="full", FOUNDSEG_SD_MODEL="/mirror/sd15"):
    ...     current_scale().sd_model
    '/mirror/sd15'
    >>> with mock.patch.dict(os.environ, FOUNDSEG_MAX_COUNT="0"):
    ...     current_scale()
    Traceback (most recent call last):
    ...
    ValueError: FOUNDSEG_MAX_COUNT must be an integer of at least 1, got '0'
    """
    chosen = SCALES[scale_name()]
    overrides = {}
    for kind in FULL_SCALE:
        value = os.environ.get(f"FOUNDSEG_{kind.upper()}_MODEL", "").strip()
        if value:
            overrides[f"{kind}_model"] = value
    cap = os.environ.get("FOUNDSEG_MAX_COUNT", "").strip()
    if cap:
        if not cap.isdigit() or int(cap) < 1:
            raise ValueError(f"FOUNDSEG_MAX_COUNT must be an integer of at least 1, got {cap!r}")
        overrides["max_count"] = int(cap)
    return replace(chosen, **overrides)


CORE_THREADS = torch.get_num_threads()
"""torch's own thread count (one per core), read before any policy changes it."""


@contextmanager
def batch_threads():
    """Within the block torch uses :data:`CORE_THREADS`, restored on exit: for batched work (head training,
    feature batches), which every core speeds up and which does not collapse on a busy machine
    (``benchmarks/README.md``, ``thread_policy.py``).

    >>> with batch_threads():
    ...     torch.get_num_threads() == CORE_THREADS
    True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(CORE_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def apply_thread_policy() -> int:
    """Set torch's CPU threads to the current scale's ``cpu_threads`` (if it sets one); return the count in use.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="shapes"):
    ...     apply_thread_policy()
    1
    """
    threads = current_scale().cpu_threads
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def default_model(kind: str) -> str:
    """The model name for ``kind`` (``clip``, ``sd`` or ``dit``) at the current scale (see :func:`current_scale`).

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="shapes"):
    ...     default_model("clip"), default_model("sd")
    ('shapes-clip', 'shapes-sd')
    >>> with mock.patch.dict(os.environ, FOUNDSEG_SCALE="full"):
    ...     default_model("clip")
    'openai/clip-vit-base-patch16'
    """
    if kind not in FULL_SCALE:
        raise ValueError(f"kind must be one of {sorted(FULL_SCALE)}, got {kind!r}")
    return getattr(current_scale(), f"{kind}_model")

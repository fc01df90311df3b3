"""Chapter 3: a word's cross-attention while generating, against the same map after noising the image once (as
ODISE does) or denoising it again, and k-means on the UNet's features — on generated scenes and on the shapes
world's test images, beside the centred-disc floor and an absent-word control."""
from __future__ import annotations

from ..data import CLASSES, sample
from ..data.shapes import article
from ..diffusion import output_layers
from ..diffusion.denoiser import denoiser
from ..eval import (binary_iou, centred_disc, cluster_qualities, denoise_curve, generated_scenes, last_step_scores,
                    mean_or_nan, renoise_curve)

RENOISE_TS = (None, 0, 100, 200, 400, 600, 800, 999)
"""The noise levels t of the single noising (None: the image's latents as they are)."""
KMEANS_TS = (None, 0, 200, 500, 800)
"""The noise levels at which k-means groups the UNet's features."""
CAPTION, WORD_ONLY, ABSENT = "true caption (oracle)", "word only", "absent word (control)"
"""Three ways a test image is prompted: its true caption (which only ground truth gives), the first object's
class word alone (what an image label gives), and the word of a class the image does not hold."""
COLOUR = "colour word (oracle)"
"""A fourth: the first object's colour word, in a prompt naming its colour and class ("a red circle"), which
only ground truth gives."""


def absent_class(present) -> str:
    """The first class (in :data:`~foundseg.data.CLASSES` order) not among ``present``.

    >>> absent_class(["circle", "square"])
    'triangle'
    """
    return next(c for c in CLASSES if c not in present)


def prompted_items(n: int, size: int) -> dict[str, list]:
    """The first ``n`` test images as (image, prompt, word, mask) items, each scored against its first object's
    mask, for each prompt kind (:data:`CAPTION`, :data:`WORD_ONLY`, :data:`ABSENT`, :data:`COLOUR`): the absent
    word's map is scored against the object that is there, so a map that scores as well for it does not
    localise its word.

    >>> items = prompted_items(1, 32)
    >>> {kind: v[0][1:3] for kind, v in items.items()}
    {'true caption (oracle)': ('an orange crescent', 'crescent'), 'word only': ('a crescent', 'crescent'), \
'absent word (control)': ('a circle', 'circle'), 'colour word (oracle)': ('an orange crescent', 'orange')}
    """
    images = [sample("test", i, size=size) for i in range(n)]
    out = {CAPTION: [], WORD_ONLY: [], ABSENT: [], COLOUR: []}
    for x in images:
        first, mask = x.objects[0], x.mask == x.objects[0].class_id
        wrong = absent_class([o.shape for o in x.objects])
        out[CAPTION].append((x.image, x.caption, first.shape, mask))
        out[WORD_ONLY].append((x.image, f"{article(first.shape)} {first.shape}", first.shape, mask))
        out[ABSENT].append((x.image, f"{article(wrong)} {wrong}", wrong, mask))
        out[COLOUR].append((x.image, f"{article(first.colour)} {first.colour} {first.shape}", first.colour, mask))
    return out


def disc_iou(items) -> float:
    """Mean IoU of the centred disc with each item's mask: the floor of a map scored on those items.

    >>> disc_iou(prompted_items(2, 32)[WORD_ONLY]) > 0
    True
    """
    return mean_or_nan(binary_iou(centred_disc(mask.shape), mask) for *_, mask in items)


def scene_items(scenes) -> list:
    """Generated scenes (:func:`~foundseg.eval.generated_scenes`) as (image, prompt, word, mask) items."""
    return [(s.image, s.prompt, s.word, s.mask) for s in scenes]


def generated(pipe, n: int, steps: int, guidance: float = 7.5) -> dict:
    """``n`` generated single-object scenes (``"scenes"``) and how their word's map at the last step overlaps
    the object (``"last_step"``: :func:`~foundseg.eval.last_step_scores`)."""
    scenes = generated_scenes(pipe, n, steps=steps, guidance=guidance)
    return {"scenes": scenes, "last_step": last_step_scores(scenes)}


def renoised(pipe, scenes, n: int, size: int, ts=RENOISE_TS, kinds=(CAPTION, WORD_ONLY, ABSENT)) -> dict:
    """The word map's IoU after noising once at each t of ``ts``: on the generated ``scenes`` (``"generated"``)
    and on the first ``n`` test images at ``size`` px, prompted each way of ``kinds``
    (:func:`~foundseg.eval.renoise_curve`'s result by kind), with the centred disc on those images
    (``"centred disc"``)."""
    items = prompted_items(n, size)
    out = {"generated": renoise_curve(pipe, scene_items(scenes), ts)}
    out.update({kind: renoise_curve(pipe, items[kind], ts) for kind in kinds})
    out["centred disc"] = disc_iou(items[WORD_ONLY])
    return out


def denoised(pipe, scenes, n: int, size: int, strength: float, steps: int, guidance: float = 7.5) -> dict:
    """The word map's IoU at each denoising step after re-noising to ``strength``: generated ``scenes`` with
    their prompt, and the first ``n`` test images with their true caption (an oracle)."""
    return {"generated": denoise_curve(pipe, scene_items(scenes), strength, steps, guidance)["all"],
            CAPTION: denoise_curve(pipe, prompted_items(n, size)[CAPTION], strength, steps, guidance)["all"]}


def clustered(pipe, n: int, size: int, ts=KMEANS_TS, layers: bool = True) -> dict:
    """k-means on the denoiser's output-side features (a UNet's up-blocks, a transformer's joint blocks) of
    the first ``n`` test images at ``size`` px noised once at each t of ``ts``, all output layers averaged:
    with the true number of regions (``"true k (oracle)"``) and with k chosen from the features (``"k from
    features"``), each t → ``miou``, ``purity`` and mean ``k``; with ``layers``, at t = 200 by the number of
    last layers averaged (``"by layers"``, true k)."""
    images = [sample("test", i, size=size) for i in range(n)]
    n_out = len(output_layers(denoiser(pipe)))
    settings = [(t, n_out, k) for k in (None, "auto") for t in ts]
    settings += [(200, last, None) for last in range(1, n_out + 1)] if layers else []
    q = cluster_qualities(pipe, images, settings, size=(size, size))  # one denoiser pass per image and t
    out = {"true k (oracle)": {t: q[t, n_out, None] for t in ts},
           "k from features": {t: q[t, n_out, "auto"] for t in ts}}
    if layers:
        out["by layers"] = {last: q[200, last, None] for last in range(1, n_out + 1)}
    return out

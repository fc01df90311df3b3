"""Scoring cross-attention maps against object masks (the paper's Fig. 3, measured)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..data import CLASSES, COLOURS
from ..data.shapes import article
from ..clustering import choose_k, cluster_features
from ..diffusion import (EVERY_STEP, AttentionMaps, Capture, denoise_attention, encode_image, generate,
                         renoise_attention_at)
from ..diffusion.features import combine_layers, layer_features
from ..maps import resize_maps
from .judge import judge
from .metrics import binary_iou, centred_disc, cluster_scores, mean_or_nan

NORMALISATIONS = ("minmax", "max")


def map_iou(attention: torch.Tensor, mask, threshold: float = 0.5, normalise: str = "minmax") -> float:
    """IoU of an attention map (h, w), upsampled to the mask's size, normalised and thresholded, with ``mask``.

    ``minmax`` scales the map to [0, 1]; ``max`` divides by its maximum (tiny models' maps are flat, so the
    two differ a lot: say which one a number uses). ``mask`` is a boolean (H, W) array; ``threshold`` applies
    to the normalised map.

    >>> attention = torch.tensor([[0.6, 1.0], [0.6, 1.0]])  # the right column attends more
    >>> right = np.zeros((4, 4), bool)
    >>> right[:, 2:] = True
    >>> map_iou(attention, right)  # upsampled columns 0, 0.25, 0.75, 1 after min-max
    1.0
    >>> map_iou(attention, right, normalise="max")  # 0.6 .. 1 after dividing by the max: all kept
    0.5
    """
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    mask = np.asarray(mask, bool)
    return binary_iou(resize_maps(attention, mask.shape, normalise=normalise).cpu().numpy() >= threshold, mask)


def by_resolution(maps: AttentionMaps) -> dict[int, torch.Tensor]:
    """The first batch item's first word map, averaged over the layers of each resolution (rows).

    ``maps`` is an :class:`~foundseg.diffusion.AttentionMaps`; the result runs from the finest resolution
    to the coarsest.

    >>> maps = AttentionMaps({"down.0": torch.ones(1, 1, 8, 8), "up.1": torch.zeros(1, 1, 8, 8),
    ...                       "mid": torch.ones(1, 1, 4, 4)}, steps=[0])
    >>> {r: (tuple(m.shape), float(m.mean())) for r, m in by_resolution(maps).items()}
    {8: ((8, 8), 0.5), 4: ((4, 4), 1.0)}
    """
    out: dict[int, list] = {}
    for name, m in maps.per_layer.items():
        out.setdefault(m.shape[-2], []).append(m[0, 0])
    return {r: torch.stack(v).mean(0) for r, v in sorted(out.items(), reverse=True)}


@dataclass
class Scene:
    """A single-object generated image, its prompt and word, the object's mask (by colour) and its maps.

    :func:`generated_scenes` makes them; ``image`` is (H, W, 3) uint8, ``mask`` boolean (H, W) and ``maps``
    an :class:`~foundseg.diffusion.AttentionMaps`.

    >>> scene = Scene("a red circle", "circle", np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), bool),
    ...               AttentionMaps({}, []))
    >>> scene.word, scene.mask.shape
    ('circle', (32, 32))
    """

    prompt: str
    word: str
    image: np.ndarray
    mask: np.ndarray
    maps: AttentionMaps


def judged_generations(pipe, tries, capture: Capture = Capture(), steps: int = 20, guidance: float = 7.5,
                       size: int | None = None):
    """Generate "a {colour} {shape}" for each (colour, shape, seed) of ``tries``, recording the shape word's maps
    as ``capture`` asks, and judge each image (:func:`~foundseg.eval.judge.judge`): yields (colour, shape,
    prompt, :class:`~foundseg.diffusion.Generation`, verdict), one try at a time. ``steps`` and ``guidance``
    are the sampler's; ``size`` the images' side in pixels (None: the pipeline's own).

    >>> from foundseg.models import load_sd
    >>> [(p, v["colour_ok"]) for _, _, p, _, v in judged_generations(load_sd("shapes-sd"), [("red", "circle", 0)])]
    [('a red circle', True)]
    """
    for colour, shape, seed in tries:
        prompt = f"{article(colour)} {colour} {shape}"
        g = generate(pipe, prompt, [shape], capture, num_inference_steps=steps, guidance_scale=guidance, seed=seed,
                     height=size, width=size)
        yield colour, shape, prompt, g, judge(g.image, colour, shape)


def generated_scenes(pipe, n: int, steps: int = 20, guidance: float = 7.5, seed: int = 0, concepts=None,
                     size: int | None = None) -> list[Scene]:
    """Generate "a {colour} {shape}" images (cycling through all pairs) until ``n`` show their colour;
    keep the word's maps at the last step. Gives up after 3n tries.

    ``pipe`` is a Stable Diffusion pipeline (e.g. :func:`foundseg.models.load_sd`); ``steps`` and
    ``guidance`` are the sampler's steps and guidance scale; ``seed`` shuffles the pairs and seeds each try;
    ``concepts`` as in :func:`foundseg.diffusion.capture.recorder` (ConceptAttention on an SD3 pipeline);
    ``size`` is the images' side in pixels (None: the pipeline's own).

    >>> from foundseg.models import load_sd
    >>> scenes = generated_scenes(load_sd("shapes-sd"), 2, steps=10)
    >>> [(s.prompt, s.word, s.mask.shape) for s in scenes]  # the judged object's mask, in the image's shape
    [('a purple circle', 'circle', (32, 32)), ('a red diamond', 'diamond', (32, 32))]
    >>> all(0 < s.mask.sum() < s.mask.size for s in scenes)
    True
    """
    pairs = [(c, s) for s in CLASSES for c in COLOURS]
    rng = np.random.default_rng(seed)
    rng.shuffle(pairs)
    scenes = []
    tries = ((*pairs[i % len(pairs)], seed + i) for i in range(3 * n))
    for _, shape, prompt, g, verdict in judged_generations(pipe, tries, Capture(concepts=concepts), steps, guidance,
                                                           size):
        if verdict["colour_ok"]:
            scenes.append(Scene(prompt, shape, g.image, verdict["mask"], g.maps))
            if len(scenes) == n:
                break
    return scenes


def last_step_scores(scenes, threshold: float = 0.5) -> dict:
    """How the word maps of generated ``scenes`` (:func:`generated_scenes`) at their last step overlap their
    objects: mean IoU of the map (``all``), per resolution (``by_resolution``, finest first), of the map's
    complement (``complement``: where the word's attention is *not*, same threshold) and of the book's
    centred disc (``disc``). ``threshold`` goes to :func:`map_iou`.

    >>> scene = Scene("a red circle", "circle", np.zeros((8, 8, 3), np.uint8), centred_disc((8, 8)),
    ...               AttentionMaps({"up.0": torch.tensor(centred_disc((4, 4)), dtype=torch.float32)[None, None]}, [0]))
    >>> {k: (round(v, 3) if isinstance(v, float) else v) for k, v in last_step_scores([scene]).items()}
    {'all': 1.0, 'by_resolution': {4: 1.0}, 'complement': 0.0, 'disc': 1.0}
    """
    by_res: dict[int, list] = {}
    for s in scenes:
        for r, m in by_resolution(s.maps).items():
            by_res.setdefault(r, []).append(map_iou(m, s.mask, threshold))
    return {"all": mean_or_nan(map_iou(s.maps.mean()[0, 0], s.mask, threshold) for s in scenes),
            "by_resolution": {r: mean_or_nan(v) for r, v in by_res.items()},
            "complement": mean_or_nan(map_iou(-s.maps.mean()[0, 0], s.mask, threshold) for s in scenes),
            "disc": mean_or_nan(binary_iou(centred_disc(s.mask.shape), s.mask) for s in scenes)}


def renoise_curve(pipe, items, ts, threshold: float = 0.5, normalise: str = "minmax", seed: int = 0,
                  concepts=None, size=None) -> dict:
    """Mean IoU of the word map after re-noising once at each t in ``ts`` (``None`` = no noise), overall and
    per resolution. ``items``: (image, prompt, word, mask) tuples.

    ``pipe`` is a Stable Diffusion pipeline; ``threshold`` and ``normalise`` go to :func:`map_iou`; item
    ``k`` is noised with seed ``seed + k``; ``concepts`` as in :func:`generated_scenes`; ``size`` (height,
    width) as in :func:`~foundseg.diffusion.encode_image` (None: the pipeline's own resolution). Returns
    ``{"all": {t: IoU}, "by_resolution": {t: {rows: IoU}}}``, and with ``concepts`` ``"joint"``: the words'
    joint-attention IoU from the same passes.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> s.caption
    'an orange crescent'
    >>> items = [(s.image, s.caption, "crescent", s.mask == s.class_ids[0])]
    >>> curve = renoise_curve(load_sd("shapes-sd"), items, ts=[None, 100])
    >>> list(curve["all"]), sorted(curve["by_resolution"][100])
    ([None, 100], [4, 8, 16])
    >>> all(0 <= v <= 1 for v in curve["all"].values())
    True
    """
    ious, joint_ious = {t: [] for t in ts}, {t: [] for t in ts}
    res_ious = {t: {} for t in ts}
    for k, (image, prompt, word, mask) in enumerate(items):
        at_t = renoise_attention_at(pipe, image, prompt, [word], ts, Capture(concepts=concepts), seed=seed + k,
                                    size=size)
        for t, maps in at_t.items():
            ious[t].append(map_iou(maps.mean()[0, 0], mask, threshold, normalise))
            for r, m in by_resolution(maps).items():
                res_ious[t].setdefault(r, []).append(map_iou(m, mask, threshold, normalise))
            if maps.joint is not None:
                joint_ious[t].append(map_iou(maps.joint.mean()[0, 0], mask, threshold, normalise))
    out = {"all": {t: mean_or_nan(v) for t, v in ious.items()},
           "by_resolution": {t: {r: mean_or_nan(v) for r, v in per_r.items()} for t, per_r in res_ious.items()}}
    if concepts is not None:
        out["joint"] = {t: mean_or_nan(v) for t, v in joint_ious.items()}
    return out


def denoise_curve(pipe, items, strength: float, steps: int, guidance: float = 7.5, threshold: float = 0.5,
                  normalise: str = "minmax", seed: int = 0, concepts=None) -> dict:
    """Mean IoU of the word map at each denoising step k after re-noising to ``strength`` (img2img).

    ``pipe`` is a Stable Diffusion pipeline; ``items`` are (image, prompt, word, mask) tuples as in
    :func:`renoise_curve`; ``steps`` and ``guidance`` are the img2img schedule's length (of which
    ``strength`` × ``steps`` are run) and guidance scale; ``threshold`` and ``normalise`` go to
    :func:`map_iou`; item ``k`` uses seed ``seed + k``; ``concepts`` as in :func:`generated_scenes`. Steps are
    numbered from 1. Returns ``{"all": {k: IoU}}``, and with ``concepts`` ``"joint"``: the words'
    joint-attention IoU from the same denoising.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> s = sample("test", 0)
    >>> items = [(s.image, s.caption, "crescent", s.mask == s.class_ids[0])]
    >>> curve = denoise_curve(load_sd("shapes-sd"), items, strength=0.5, steps=4)
    >>> sorted(curve["all"]), all(0 <= v <= 1 for v in curve["all"].values())
    ([1, 2], True)
    """
    per_k: dict[int, list] = {}
    joint_per_k: dict[int, list] = {}
    for k, (image, prompt, word, mask) in enumerate(items):
        maps = denoise_attention(pipe, image, prompt, [word], replace(EVERY_STEP, concepts=concepts),
                                 strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                                 seed=seed + k).maps
        joint = maps.joint.per_step if maps.joint is not None else {}
        for per_step, scores in ((maps.per_step, per_k), (joint, joint_per_k)):
            for j, step in enumerate(sorted(per_step)):
                scores.setdefault(j + 1, []).append(map_iou(per_step[step][0, 0], mask, threshold, normalise))
    out = {"all": {k: mean_or_nan(v) for k, v in per_k.items()}}
    if concepts is not None:
        out["joint"] = {k: mean_or_nan(v) for k, v in joint_per_k.items()}
    return out


def cluster_quality(pipe, samples, t: int | None, last: int, k: int | str | None = None, seed: int = 0,
                    size=None) -> dict:
    """Mean k-means quality (``miou`` and ``purity`` of :func:`~foundseg.eval.metrics.cluster_scores`) of the
    denoiser's features of shapes-world ``samples`` noised once to ``t``, averaging the ``last`` output-side
    layers (:func:`~foundseg.diffusion.extract_features`), and the mean number of clusters ``k`` used.

    ``k`` is the number of clusters: ``None`` gives each image as many as it has regions (its classes plus
    background) — the *oracle* number, which only ground truth gives; ``"auto"`` chooses it per image from the
    features alone (:func:`~foundseg.clustering.choose_k`, 2 to 5); an integer fixes it. ``seed``
    fixes the noise; ``size`` is as in :func:`renoise_curve`.

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> q = cluster_quality(load_sd("shapes-sd"), [sample("test", 0)], t=200, last=2)
    >>> sorted(q), q["k"], all(0 <= q[m] <= 1 for m in ("miou", "purity"))
    (['k', 'miou', 'purity'], 2.0, True)
    """
    return cluster_qualities(pipe, samples, [(t, last, k)], seed, size)[t, last, k]


def cluster_qualities(pipe, samples, settings, seed: int = 0, size=None) -> dict:
    """:func:`cluster_quality` at each ``(t, last, k)`` of ``settings``, by setting, with one encoding per sample
    and one denoiser pass per sample and t (the same numbers, computed once).

    >>> from foundseg.models import load_sd
    >>> from foundseg.data import sample
    >>> pipe, xs = load_sd("shapes-sd"), [sample("test", 0)]
    >>> q = cluster_qualities(pipe, xs, [(200, 2, None), (200, 6, "auto")])
    >>> q[200, 2, None] == cluster_quality(pipe, xs, 200, 2), q[200, 6, "auto"] == cluster_quality(pipe, xs, 200, 6, "auto")
    (True, True)
    """
    settings = list(dict.fromkeys(tuple(s) for s in settings))
    deepest = {}  # t → the most layers any setting averages at t
    for t, last, _ in settings:
        if not isinstance(last, int) or last < 1:
            raise ValueError(f"last must be a positive number of layers, got {last!r}")
        deepest[t] = max(deepest.get(t, last), last)
    scores = {s: [] for s in settings}
    for x in samples:
        latents = encode_image(pipe, x.image, size)
        for t, n_layers in deepest.items():
            layers = layer_features(pipe, latents, t=t, last=n_layers, seed=seed)
            for setting in [s for s in settings if s[0] == t]:
                _, last, k = setting
                features = combine_layers(layers[-last:])
                n = len(x.class_ids) + 1 if k is None else choose_k(features) if k == "auto" else k
                labels = cluster_features(features, n, size=x.mask.shape)
                scores[setting].append(dict(cluster_scores(labels.numpy(), x.mask), k=n))
    return {s: {m: mean_or_nan(q[m] for q in scores[s]) for m in ("miou", "purity", "k")} for s in settings}

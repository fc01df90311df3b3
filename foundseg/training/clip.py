"""Train ``shapes-clip``: a ``transformers.CLIPModel`` on shapes-world image–caption pairs.

Recipe (see the model card): captions name shapes, sometimes colours; every
caption whose objects are all in an image counts as a positive for it; the
image embedding is the projected CLS token, as real CLIP's; an auxiliary
region loss contrasts small windows of patch tokens on a random point of one
object with a caption of the shapes inside the window, both at the final
tokens and at the tokens entering the last block; a word loss contrasts each
shape word's own token state (the text tower's output at that word,
projected) with the images and windows that hold that shape, so that word
tokens carry their word's meaning, as real CLIP's do and as Stable
Diffusion's cross-attention needs. The auxiliary losses use object
positions, which real CLIP never sees.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from ..data import shapes
from ..data.vocab import MODEL_MAX_LENGTH, write_tokenizer
from ..models.clip_embeddings import POOLINGS, pixel_values, pool_tokens
from .common import LossLog, seed_everything, training_pool, warmup_cosine
from ..progress import progress_bar

SETTINGS = dict(size=64, patch=8, width=96, vision_layers=4, text_layers=3, heads=4, projection=64,
                pool=60000, steps=2400, batch=128, lr=2e-3, warmup=100, weight_decay=0.1,
                colour_prob=0.25, region_weight=1.0, inner_region_weight=1.0, word_weight=1.0, pooling="cls",
                window_sizes=(1, 2), window_anchor="point")
WINDOW_ANCHORS = ("point", "centroid")
"""Where a region window sits: on a random pixel of the object, or centred on the object."""


def clip_config(tokenizer, s=SETTINGS) -> CLIPConfig:
    """The shapes-clip architecture for ``tokenizer``'s vocabulary."""
    common = dict(hidden_size=s["width"], intermediate_size=4 * s["width"], num_attention_heads=s["heads"])
    text = dict(common, vocab_size=len(tokenizer), num_hidden_layers=s["text_layers"], max_position_embeddings=MODEL_MAX_LENGTH,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(common, image_size=s["size"], patch_size=s["patch"], num_hidden_layers=s["vision_layers"])
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=s["projection"], image_pooling=s["pooling"])


def _phrase(objs, rng) -> str:
    parts = [f"{shapes.article(c)} {c} {sh}" if c else f"{shapes.article(sh)} {sh}" for sh, c in objs]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return ("a photo of " + text) if rng.random() < 0.5 else text


def _caption(objects, rng, colour_prob):
    """A caption of a random subset of ``objects`` [(shape, colour)]; returns text and its requirements."""
    objs = list(objects)
    rng.shuffle(objs)
    if rng.random() >= 0.5:
        objs = objs[: rng.integers(1, len(objs) + 1)]
    use_colour = rng.random() < colour_prob
    reqs = [(sh, c if use_colour else None) for sh, c in objs]
    return _phrase(reqs, rng), reqs


_SLOTS = {(sh, c): i * (len(shapes.COLOURS) + 1) + j for i, sh in enumerate(shapes.CLASSES)
          for j, c in enumerate([*shapes.COLOURS, None])}
"""One slot per requirement (shape, colour or None = any colour)."""


def _positives(reqs_list, object_sets) -> torch.Tensor:
    """pos[i, j]: caption j's requirements all hold in object set i."""
    held = torch.zeros(len(object_sets), len(_SLOTS))
    for i, objs in enumerate(object_sets):
        held[i, [_SLOTS[o] for o in objs] + [_SLOTS[(sh, None)] for sh, _ in objs]] = 1
    needed = torch.zeros(len(reqs_list), len(_SLOTS))
    for j, reqs in enumerate(reqs_list):
        needed[j, [_SLOTS[r] for r in reqs]] = 1
    return (held @ needed.T == needed.sum(1)).float()


def _multi_positive_nce(img, txt, pos, scale):
    logits = scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    i2t = -(pos / pos.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    t2i = -(pos.T / pos.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
    return (i2t + t2i) / 2


def _shape_word_ids(tokenizer) -> torch.Tensor:
    """The token id of each shape name; each must be one token, so that its state is the word's own."""
    ids = tokenizer(list(shapes.CLASSES), add_special_tokens=False).input_ids
    split = [name for name, i in zip(shapes.CLASSES, ids) if len(i) != 1]
    if split:
        raise ValueError(f"tokenizer splits the shape names {split}: each must be a single token")
    return torch.tensor([i[0] for i in ids])


def _word_loss(embeds, states, is_word, reqs_list, object_sets, model, scale):
    """Multi-positive NCE between ``embeds`` (images or windows, one per object set) and the projected token
    states of every shape word of the captions, each word a requirement of its own."""
    words = model.text_projection(states[is_word])
    word_reqs = [[r] for reqs in reqs_list for r in reqs]
    if len(word_reqs) != len(words):
        raise RuntimeError(f"{len(words)} shape-word tokens for {len(word_reqs)} shapes named: a caption was truncated")
    return _multi_positive_nce(embeds, words, _positives(word_reqs, object_sets).to(embeds.device), scale)


def _visible(sample):
    """(shape, colour) of objects with visible pixels, and each one's visible pixel mask."""
    out = []
    for o in sample.objects:
        m = sample.mask == o.class_id
        if m.any():
            out.append(((o.shape, o.colour), m))
    return out


def _region(sample, rng, grid, patch, sizes, anchor_at):
    """A window of patch tokens on one object: token mask (grid²,) and the objects mostly inside.

    The window's side is drawn from ``sizes`` (smallest, largest); ``anchor_at`` is one of :data:`WINDOW_ANCHORS`:
    ``"centroid"`` centres it on the object, ``"point"`` places it at random so that it holds a random pixel of
    the object."""
    vis = _visible(sample)
    (_, anchor) = vis[rng.integers(len(vis))]
    ys, xs = np.nonzero(anchor)
    w = int(rng.integers(sizes[0], sizes[1] + 1))
    if anchor_at == "point":
        k = rng.integers(len(ys))
        ty = int(np.clip(ys[k] // patch - rng.integers(w), 0, grid - w))
        tx = int(np.clip(xs[k] // patch - rng.integers(w), 0, grid - w))
    else:
        ty = int(np.clip(round(ys.mean() / patch - w / 2), 0, grid - w))
        tx = int(np.clip(round(xs.mean() / patch - w / 2), 0, grid - w))
    window = np.zeros((grid, grid), bool)
    window[ty:ty + w, tx:tx + w] = True
    pix = np.kron(window, np.ones((patch, patch), bool))
    frac = [(obj, (m & pix).sum() / m.sum()) for obj, m in vis]
    inside = [obj for obj, f in frac if f > 0.5] or [max(frac, key=lambda t: t[1])[0]]
    return torch.from_numpy(window.reshape(-1)), inside


def _window_embeddings(model, tokens, window):
    """Projected mean of the patch tokens (after the final LayerNorm) inside each token ``window`` (B, N)."""
    dense = model.vision_model.post_layernorm(tokens[:, 1:])
    return model.visual_projection((dense * window[..., None]).sum(1) / window.sum(1, keepdim=True))


def train_clip(out_dir, seed: int = 0, progress: bool = True, device="cpu", **overrides) -> dict:
    """Train shapes-clip into ``out_dir`` (model, tokenizer, preprocessing); return the training log summary.

    Random draws stay on the CPU whatever the ``device``, so a seed gives the same batches everywhere.

    ``seed`` seeds the weights and the batches; ``progress`` shows progress bars; ``overrides`` replace entries
    of :data:`SETTINGS` (``steps``, ``batch``, ``pool``, ``lr``, ``pooling`` — the image embedding the losses
    train and the config records, real CLIP's ``"cls"`` or ``"patch_mean"``; ``window_sizes`` and
    ``window_anchor`` — the region windows' sides and placement, one of :data:`WINDOW_ANCHORS`;
    ``inner_region_weight`` — the region loss on the tokens entering the last block, 0 to leave it out ...).
    The log holds ``steps``, ``wall_time_s``, ``final_loss``, ``curves``, ``settings`` and ``seed``.

    A tiny run, for illustration:

    >>> log = train_clip("tiny-zoo/shapes-clip", steps=3, pool=300, batch=16, progress=False)  # doctest: +SKIP
    >>> log["steps"], sorted(log["final_loss"])  # doctest: +SKIP
    (3, ['image', 'inner_region', 'region', 'word'])
    """
    s = dict(SETTINGS, **overrides)
    if s["pooling"] not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {s['pooling']!r}")
    if s["window_anchor"] not in WINDOW_ANCHORS:
        raise ValueError(f"window_anchor must be one of {WINDOW_ANCHORS}, got {s['window_anchor']!r}")
    lo, hi = s["window_sizes"]
    if not 1 <= lo <= hi <= s["size"] // s["patch"]:
        raise ValueError(f"window_sizes must be (smallest, largest) window sides in tokens, within the token grid; "
                         f"got {s['window_sizes']}")
    out_dir = Path(out_dir)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(out_dir))
    gen = seed_everything(seed)
    rng = np.random.default_rng(seed)
    model = CLIPModel(clip_config(tokenizer, s)).to(device)
    shape_ids = _shape_word_ids(tokenizer).to(device)
    images, samples = training_pool(s["pool"], s["size"], seed, progress)
    visible = [[obj for obj, _ in _visible(x)] for x in samples]
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], betas=(0.9, 0.98), weight_decay=s["weight_decay"])
    sched = warmup_cosine(opt, s["warmup"], s["steps"])
    grid = s["size"] // s["patch"]
    log = LossLog("clip")
    model.train()
    for _ in progress_bar(range(s["steps"]), "shapes-clip", progress):
        idx = torch.randint(len(samples), (s["batch"],), generator=gen).numpy()
        objs = [visible[i] for i in idx]
        caps = [_caption(o, rng, s["colour_prob"]) for o in objs]
        regions = [_region(samples[i], rng, grid, s["patch"], s["window_sizes"], s["window_anchor"]) for i in idx]
        region_caps = [_caption(inside, rng, s["colour_prob"]) for _, inside in regions]
        vision = model.vision_model(pixel_values=pixel_values(images[idx], device=device), output_hidden_states=True)
        tokens = vision.last_hidden_state
        img = pool_tokens(model, tokens, s["pooling"])
        window = torch.stack([w for w, _ in regions]).float().to(device)
        reg = _window_embeddings(model, tokens, window)
        ids = tokenizer([c for c, _ in caps] + [c for c, _ in region_caps], padding="longest", return_tensors="pt").to(device)
        text = model.text_model(input_ids=ids.input_ids, attention_mask=ids.attention_mask)
        txt = model.text_projection(text.pooler_output)
        is_word = torch.isin(ids.input_ids, shape_ids)
        scale = model.logit_scale.exp().clamp(max=100)
        n = len(idx)
        reqs, region_reqs, inside = [r for _, r in caps], [r for _, r in region_caps], [i for _, i in regions]
        region_pos = _positives(region_reqs, inside).to(device)
        losses = {"image": _multi_positive_nce(img, txt[:n], _positives(reqs, objs).to(device), scale),
                  "region": _multi_positive_nce(reg, txt[n:], region_pos, scale)}
        if s["inner_region_weight"]:
            inner = _window_embeddings(model, vision.hidden_states[-2], window)
            losses["inner_region"] = _multi_positive_nce(inner, txt[n:], region_pos, scale)
        states = text.last_hidden_state
        losses["word"] = (_word_loss(img, states[:n], is_word[:n], reqs, objs, model, scale)
                          + _word_loss(reg, states[n:], is_word[n:], region_reqs, inside, model, scale)) / 2
        weights = {"image": 1.0, "region": s["region_weight"], "inner_region": s["inner_region_weight"],
                   "word": s["word_weight"]}
        loss = sum(weights[k] * v for k, v in losses.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log.add(**{k: v.item() for k, v in losses.items()})
    model.eval().to("cpu")
    model.save_pretrained(out_dir)
    preprocess = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": s["size"]},
                  "do_center_crop": True, "crop_size": {"height": s["size"], "width": s["size"]}, "do_rescale": True,
                  "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                  "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "do_convert_rgb": True}
    (out_dir / "preprocessor_config.json").write_text(json.dumps(preprocess, indent=2))
    return dict(log.summary(), settings=s, seed=seed)

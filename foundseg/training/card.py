"""Model cards of the shapes-world zoo, written from numbers measured by :func:`foundseg.eval.zoo.measure_zoo`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..models import load_clip, load_sd


_POOLING_LINES = {
    "patch_mean": "**Image embedding = projection of the mean of the (post-LayerNorm) patch tokens** "
                  "(`image_pooling: patch_mean`\n  in config.json), not the CLS token.",
    "cls": "Image embedding = projection of the (post-LayerNorm) CLS token, as real CLIP's (`image_pooling: cls`).",
}


def _window(s) -> str:
    """The region windows' size and placement, in words."""
    lo, hi = s["window_sizes"]
    sides = f"{lo}×{lo}" if lo == hi else f"{lo}×{lo} to {hi}×{hi}"
    where = {"point": "placed at random over a random pixel of one object", "centroid": "centred on one object"}
    return f"{sides} tokens {where[s['window_anchor']]}"


def _inner(s) -> str:
    """The region loss on the tokens entering the last block, if the recipe has it."""
    w = s["inner_region_weight"]
    return f", at the final tokens and (weight {w}) at the tokens entering the last block" if w else ""


def _attention(s, latent: int) -> str:
    """Which UNet levels attend to the image itself, in words (``latent`` is the side of the UNet's input)."""
    levels = s.get("only_cross_attention", ())  # absent from the logs of models trained before the setting
    caption_only = [f"{latent >> i}×{latent >> i}" for i, only in enumerate(levels) if only]
    if not caption_only:
        return "self- and cross-attention in every block"
    return (f"cross-attention in every block; self-attention in every block but those at {', '.join(caption_only)}, "
            f"whose first attention\n  attends to the caption too (`only_cross_attention`) instead of across the "
            f"{latent * latent} latent pixels, the costliest\n  part of a training step on a CPU")


def _heads(s) -> str:
    """The UNet's attention heads per level and their width, in words (``heads``: one count or one per level).

    >>> _heads(dict(channels=(32, 64, 128), heads=(1, 2, 4)))
    '1/2/4 attention heads per level (32 channels wide)'
    >>> _heads(dict(channels=(32, 64, 128), heads=4))
    '4/4/4 attention heads per level (8/16/32 channels wide)'
    """
    heads = s["heads"] if isinstance(s["heads"], (list, tuple)) else [s["heads"]] * len(s["channels"])
    widths = sorted({c // h for c, h in zip(s["channels"], heads)})
    return f"{'/'.join(map(str, heads))} attention heads per level ({'/'.join(map(str, widths))} channels wide)"


def _loss_plot(curves: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for name, values in curves.items():
        v = np.asarray(values)
        smooth = np.convolve(v, np.ones(25) / 25, mode="valid") if len(v) > 25 else v
        ax.plot(smooth, label=name)
    ax.set(xlabel="step", ylabel="loss (moving mean of 25)", title=title, yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bars(rows) -> str:
    """A markdown table of the behaviour each model is expected to show, measured, and whether it does."""
    lines = ["| expected | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {what} | {measured} | {'yes' if ok else '**no**'} |" for what, measured, ok in rows]
    return "\n".join(lines)


def _params(module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"


def _optimiser(settings) -> str:
    """How a model's settings were optimised, in the words every card uses."""
    return f"AdamW at learning rate {settings['lr']:g} ({settings['warmup']} warm-up steps then cosine)"


def write_cards(zoo_dir, metrics: dict) -> None:
    """Write metrics.json, loss.png and README.md beside each model in ``zoo_dir``.

    ``zoo_dir`` is a directory :func:`train_zoo` wrote (each model needs its ``train_log.json``); ``metrics``
    are the numbers :func:`foundseg.eval.zoo.measure_zoo` returns for it (shapes-dit's card is written when
    they hold it).
    """
    zoo_dir = Path(zoo_dir)
    clip_dir, sd_dir = zoo_dir / "shapes-clip", zoo_dir / "shapes-sd"
    clip = load_clip(str(clip_dir))
    pipe = load_sd(str(sd_dir))
    clip_log = json.loads((clip_dir / "train_log.json").read_text())
    sd_log = json.loads((sd_dir / "train_log.json").read_text())
    cm, sm = metrics["shapes-clip"], metrics["shapes-sd"]
    n_images = cm["n_images"]
    (clip_dir / "metrics.json").write_text(json.dumps(cm, indent=2))
    (sd_dir / "metrics.json").write_text(json.dumps(sm, indent=2))
    _loss_plot(clip_log["curves"], clip_dir / "loss.png", "shapes-clip")
    _loss_plot({**{f"vae {k}": v for k, v in sd_log["vae"]["curves"].items() if k == "l1"},
                **{f"unet {k}": v for k, v in sd_log["unet"]["curves"].items()}}, sd_dir / "loss.png", "shapes-sd")
    s = clip_log["settings"]
    (clip_dir / "README.md").write_text(f"""# shapes-clip

A `transformers.CLIPModel` trained from scratch on the shapes world by `foundseg zoo train`
(seed {clip_log['seed']}, torch {clip_log['torch']}, {clip_log['threads']} CPU threads).

- Vision: ViT, {s['size']} px, patch {s['patch']}, width {s['width']}, {s['vision_layers']} layers; text: {s['text_layers']} layers;
  projection {s['projection']}; {_params(clip.model)} parameters.
- {clip_log['steps']} steps, batch {s['batch']}, {_optimiser(s)}, betas 0.9/0.98,
  weight decay {s['weight_decay']}; wall time {clip_log['wall_time_s'] / 60:.1f} min.
- Captions name the shapes of a random subset of the objects, with colours in {s['colour_prob']:.0%} of them;
  every caption whose objects are all in an image is a positive for it.
- {_POOLING_LINES[s.get('pooling', 'patch_mean')]}
- **An auxiliary region loss** (weight {s['region_weight']}) contrasts the mean of the patch tokens in a window of
  {_window(s)}
  with a caption of the shapes mostly inside the window{_inner(s)}.
  It uses object positions, which real CLIP never sees: real CLIP gets its localisation from scale, this one
  partly from points on its objects.
- **A word loss** (weight {s['word_weight']}) contrasts each shape word's own token state (the text tower's output at
  that word, projected) with the images and windows holding that shape. Without it the tiny text tower leaves
  every word's state close to the start token's and carries the caption only in its end and padding tokens, so
  shapes-sd's cross-attention had no word to attend to; real CLIP's word states carry their words.

## Measured on the shapes-world test split (first {n_images} images)

| metric | value |
| --- | --- |
| zero-shot top-1, "a photo of a {{shape}}." ({cm['n_single']} single-object images) | {cm['zero_shot_top1']:.3f} |
| class-presence AUC ({cm['n_multi']} multi-object images) | {cm['presence_auc_multi']:.3f} |
| Grad-CAM IoU, single-object (CLIP-ES target, map ≥ 0.5) | {cm['gradcam_iou_single']:.3f} |
| centred disc IoU, single-object (the book's r = 0.3) | {cm['fixed_disc_iou_single']:.3f} |
| centred disc IoU, single-object (radius tuned on ground truth: {cm['disc_radius_single']}) | {cm['disc_iou_single']:.3f} |
| Grad-CAM IoU, multi-object, per present class | {cm['gradcam_iou_multi']:.3f} |
| centred disc IoU, multi-object (the book's r = 0.3) | {cm['fixed_disc_iou_multi']:.3f} |
| centred disc IoU, multi-object (radius tuned on ground truth: {cm['disc_radius_multi']}) | {cm['disc_iou_multi']:.3f} |

## Expected behaviour

{_bars([
        ("zero-shot top-1 >= 0.90", f"{cm['zero_shot_top1']:.3f}", cm["zero_shot_top1"] >= 0.9),
        ("class-presence AUC >= 0.90", f"{cm['presence_auc_multi']:.3f}", cm["presence_auc_multi"] >= 0.9),
        ("Grad-CAM clearly above the tuned disc (+0.03), single-object",
         f"{cm['gradcam_iou_single']:.3f} vs {cm['disc_iou_single']:.3f}",
         cm["gradcam_iou_single"] >= cm["disc_iou_single"] + 0.03),
        ("Grad-CAM clearly above the tuned disc (+0.03), multi-object",
         f"{cm['gradcam_iou_multi']:.3f} vs {cm['disc_iou_multi']:.3f}",
         cm["gradcam_iou_multi"] >= cm["disc_iou_multi"] + 0.03),
    ])}

![loss](loss.png)
""")
    vs, us = sd_log["vae"]["settings"], sd_log["unet"]["settings"]
    f, latent = pipe.vae_scale_factor, vs['size'] // pipe.vae_scale_factor
    (sd_dir / "README.md").write_text(f"""# shapes-sd

A `diffusers.StableDiffusionPipeline` trained from scratch on the shapes world by `foundseg zoo train`
(seed {sd_log['vae']['seed']}). No safety checker.

- VAE: `AutoencoderKL`, channels {list(vs['channels'])}, {vs['latent_channels']} latent channels, f = {f}
  ({vs['size']} px images → {latent}×{latent} latents), {_params(pipe.vae)} parameters, L1 + {vs['kl_weight']} KL,
  {_optimiser(vs)},
  {sd_log['vae']['steps']} steps at batch {vs['batch']}, {sd_log['vae']['wall_time_s'] / 60:.1f} min;
  latent scaling factor {pipe.vae.config.scaling_factor:.4f} (1 / std of the latents).
- UNet: `UNet2DConditionModel`, channels {list(us['channels'])}, {_attention(us, latent)},
  {_heads(us)},
  {_params(pipe.unet)} parameters, epsilon objective, {us['caption_dropout']:.0%} caption dropout,
  {_optimiser(us)}, EMA {us['ema_decay']},
  {sd_log['unet']['steps']} steps at batch {us['batch']}, {sd_log['unet']['wall_time_s'] / 60:.1f} min.
  Stored in float16 to keep the package small; loaders cast it back to float32.
- Text encoder: shapes-clip's text tower, frozen. Scheduler: DDIM with Stable Diffusion's settings
  (`clip_sample=False`, `set_alpha_to_one=False`, `steps_offset=1`).

## Measured ({sm['steps']} DDIM steps, guidance {sm['guidance_scale']})

Judge: colour segmentation (nearest palette colour, saturated pixels) plus a template shape classifier whose
accuracy on true single-object test masks is {sm['judge_accuracy_true_masks']:.3f}, and
{sm['vae_shape_rate']:.3f} on the same images after an encode–decode round trip through the VAE (the ceiling
on any generated shape rate).

| metric | value |
| --- | --- |
{_generation_rows(sm, "shape word cross-attention at the last step (mean of layers and heads)")}

## Expected behaviour

{_bars([
        ("colour right in >= 95% of single-object samples", f"{sm['colour_rate']:.3f}", sm["colour_rate"] >= 0.95),
        ("colour and shape right in >= 75% of single-object samples", f"{sm['colour_and_shape_rate']:.3f}",
         sm["colour_and_shape_rate"] >= 0.75),
        ("word attention clearly above the tuned disc (+0.05)", f"{sm['attention_iou']:.3f} vs {sm['disc_iou']:.3f}",
         sm["attention_iou"] >= sm["disc_iou"] + 0.05),
        ("judge accuracy on true masks >= 0.95", f"{sm['judge_accuracy_true_masks']:.3f}",
         sm["judge_accuracy_true_masks"] >= 0.95),
    ])}

![loss](loss.png)
""")
    if "shapes-dit" in metrics:
        write_dit_card(zoo_dir / "shapes-dit", metrics["shapes-dit"])


def _generation_rows(m: dict, attention: str) -> str:
    """The measured rows a diffusion model's card shares: caption following, word maps, the discs."""
    rows = [f"| \"a {{colour}} {{shape}}\": colour right ({m['n_single']} samples) | {m['colour_rate']:.3f} |",
            f"| shape right | {m['shape_rate']:.3f} |",
            f"| colour and shape right | {m['colour_and_shape_rate']:.3f} |",
            f"| two-object captions, both objects right ({m['n_two_object']} samples) | {m['two_object_rate']:.3f} |",
            f"| {attention} (min-max normalised, ≥ {m['attention_threshold']}) vs generated object, IoU | "
            f"{m['attention_iou']:.3f} |"]
    if "concept_attention_iou" in m:
        rows.append(f"| ConceptAttention output-space map of the shape word among the eight shape names, last step, "
                    f"same images | {m['concept_attention_iou']:.3f} |")
    rows += [f"| centred disc vs generated object, IoU (the book's r = 0.3) | {m['fixed_disc_iou']:.3f} |",
             f"| centred disc vs generated object, IoU (radius tuned on ground truth: {m['disc_radius']}) | "
             f"{m['disc_iou']:.3f} |"]
    return "\n".join(rows)


def write_dit_card(dit_dir, metrics: dict) -> None:
    """Write metrics.json, loss.png and README.md beside shapes-dit in ``dit_dir`` (which needs its
    ``train_log.json``); ``metrics`` are :func:`foundseg.eval.zoo.measure_zoo`'s numbers for it."""
    from .dit import NULL_TOKENS, WHAT_WAS_TRIED

    dit_dir = Path(dit_dir)
    log = json.loads((dit_dir / "train_log.json").read_text())
    pipe = load_sd(str(dit_dir))
    t, s, m = pipe.transformer.config, log["settings"], metrics
    (dit_dir / "metrics.json").write_text(json.dumps(m, indent=2))
    _loss_plot({f"transformer {k}": v for k, v in log["curves"].items()}, dit_dir / "loss.png", "shapes-dit")
    latent = t.sample_size
    (dit_dir / "README.md").write_text(f"""# shapes-dit

A `diffusers.StableDiffusion3Pipeline` trained on the shapes world by `foundseg zoo train` (transformer seed
{log['seed']}, torch {log['torch']}, {log['threads']} CPU threads): a small multi-modal diffusion transformer (MMDiT), the
architecture of Stable Diffusion 3, where text and image tokens share one joint attention.

- Transformer: `SD3Transformer2DModel`, {t.num_layers} joint blocks, {t.num_attention_heads} heads × {t.attention_head_dim}
  channels, patch {t.patch_size} ({latent}×{latent} latents → {(latent // t.patch_size) ** 2} image tokens),
  {_params(pipe.transformer)} parameters, rectified flow (the velocity noise − data at logit-normal noise
  levels, as SD3 trains), {s['caption_dropout']:.0%} caption dropout, {_optimiser(s)}, EMA {s['ema_decay']},
  {log['steps']} steps at batch {s['batch']} on {s['pool']} rendered images, {log['wall_time_s'] / 60:.1f} min
  ({log['total_wall_time_s'] / 60:.1f} min with rendering and encoding). Stored in float16; loaders cast it back.
- VAE: shapes-sd's, frozen (its latents are centred, so `shift_factor` is 0).
- Text: shapes-clip's text tower with its projection, frozen, in both of SD3's CLIP slots; no T5. The pipeline
  puts {NULL_TOKENS} zero embeddings where T5's tokens would be; training runs one with log({NULL_TOKENS}) added to
  its attention logit, which is the same attention.
- Scheduler: `FlowMatchEulerDiscreteScheduler` without SD3's resolution shift (`shift=1`).
- Load it with `foundseg.models.load_sd("shapes-dit")` (or diffusers with `text_encoder_3=None,
  tokenizer_3=None`).

## Measured ({m['steps']} Euler steps, guidance {m['guidance_scale']})

Judge: as shapes-sd's card (template shape classifier accuracy on true masks {m['judge_accuracy_true_masks']:.3f};
{m['vae_shape_rate']:.3f} after the shared VAE's round trip, the ceiling on any generated shape rate).

| metric | value |
| --- | --- |
{_generation_rows(m, "shape word joint attention at the last step, image→text (mean of layers and heads)")}

## Expected behaviour

{_bars([
        ("colour right in >= 95% of single-object samples", f"{m['colour_rate']:.3f}", m["colour_rate"] >= 0.95),
        ("colour and shape right in >= 75% of single-object samples", f"{m['colour_and_shape_rate']:.3f}",
         m["colour_and_shape_rate"] >= 0.75),
        ("word attention clearly above the tuned disc (+0.05)", f"{m['attention_iou']:.3f} vs {m['disc_iou']:.3f}",
         m["attention_iou"] >= m["disc_iou"] + 0.05),
    ])}

![loss](loss.png)

## What was tried

{WHAT_WAS_TRIED}""")

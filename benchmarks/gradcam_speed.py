"""foundseg's Grad-CAM (one forward of the early blocks without grad, one batched backward for all classes)
versus pytorch-grad-cam's way (one forward with grad through the whole network, then one backward per class,
the graph kept between them), and versus a fresh forward and backward per class (labelled as such: no peer
does this), 10 classes per image, side by side on shapes-clip and on CLIP ViT-B/16 (random weights, 224 px).

    python benchmarks/gradcam_speed.py
"""
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from foundseg.clip import gradcam
from foundseg.clip.inputs import prepare_image
from foundseg.clip.prompts import class_embeddings
from foundseg.data import CLASSES
from foundseg.models import capture_outputs, default_pooling, load_clip, pool_tokens, save_random_clip

NAMES = list(CLASSES) + ["disc", "box"]


def forward_with_activation(clip, pixels, text):
    """A full forward with grad: the class scores (C,) and the last block's attention input it went through."""
    model = clip.model
    with capture_outputs({"x": model.vision_model.encoder.layers[-1].layer_norm1}) as acts, torch.enable_grad():
        tokens = model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
        img = F.normalize(pool_tokens(model, tokens, default_pooling(model)), dim=-1)
    return (img @ text.T)[0], acts["x"]


def cam(grad, act):
    return torch.relu((grad[0, 1:].mean(0) * act[0, 1:]).sum(-1)).detach()


def one_backward_per_class(clip, image, names):
    """pytorch-grad-cam's way: one forward, then one backward per target with the graph retained."""
    pixels, _ = prepare_image(clip.model, image)
    scores, act = forward_with_activation(clip, pixels, class_embeddings(clip.model, clip.tokenizer, names))
    return [cam(torch.autograd.grad(scores[k], act, retain_graph=k < len(names) - 1)[0], act)
            for k in range(len(names))]


def fresh_forward_per_class(clip, image, names):
    """A fresh forward and backward through the whole network for every class (no peer's way)."""
    pixels, _ = prepare_image(clip.model, image)
    text = class_embeddings(clip.model, clip.tokenizer, names)
    maps = []
    for k in range(len(names)):
        scores, act = forward_with_activation(clip, pixels, text)
        maps.append(cam(torch.autograd.grad(scores[k], act)[0], act))
    return maps


def per_image(fn, images, repeats=1):
    fn(images[0])
    start = time.perf_counter()
    for _ in range(repeats):
        for img in images:
            fn(img)
    return (time.perf_counter() - start) / (repeats * len(images))


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        models = {"shapes-clip (64 px)": (load_clip("shapes-clip"), 64, 20),
                  "CLIP ViT-B/16, random weights (224 px)": (load_clip(str(save_random_clip(tmp))), 224, 3)}
        print(f"{'model':<40}{'foundseg ms':>12}{'1 fwd + 1 bwd/class ms':>24}{'ratio':>7}"
              f"{'fresh fwd/class ms':>20}{'ratio':>7}")
        for name, (clip, size, n) in models.items():
            images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
            ours = per_image(lambda im: gradcam(clip, im, NAMES), images)
            peer = per_image(lambda im: one_backward_per_class(clip, im, NAMES), images)
            fresh = per_image(lambda im: fresh_forward_per_class(clip, im, NAMES), images)
            print(f"{name:<40}{ours * 1e3:>12.1f}{peer * 1e3:>24.1f}{ours / peer:>7.2f}{fresh * 1e3:>20.1f}"
                  f"{ours / fresh:>7.2f}")
    print("ratios: foundseg's time over each baseline's (10 classes per image)")


if __name__ == "__main__":
    main()

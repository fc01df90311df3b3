"""foundseg's Grad-CAM (one forward of the early blocks without grad, one backward for all classes) versus a
naive Grad-CAM (a full forward and backward through the whole network per class), 10 classes per image,
side by side on shapes-clip and on CLIP ViT-B/16 (random weights, 224 px).

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
from foundseg.models import default_pooling, load_clip, pool_tokens, save_random_clip

NAMES = list(CLASSES) + ["disc", "box"]


def naive_gradcam(clip, image, names):
    model, tokenizer = clip
    pixels, _ = prepare_image(model, image)
    text = class_embeddings(model, tokenizer, names)
    layer = model.vision_model.encoder.layers[-1].layer_norm1
    maps = []
    for k in range(len(names)):
        acts = {}
        handle = layer.register_forward_hook(lambda m, a, out: acts.setdefault("x", out))
        try:
            with torch.enable_grad():
                tokens = model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
                img = F.normalize(pool_tokens(model, tokens, default_pooling(model)), dim=-1)
                (grad,) = torch.autograd.grad((img @ text[k]).sum(), acts["x"])
        finally:
            handle.remove()
        maps.append(torch.relu((grad[0, 1:].mean(0) * acts["x"][0, 1:]).sum(-1)).detach())
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
        print(f"{'model':<40}{'foundseg ms':>12}{'naive ms':>10}{'ratio':>8}")
        for name, (clip, size, n) in models.items():
            images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
            ours = per_image(lambda im: gradcam(clip, im, NAMES), images)
            naive = per_image(lambda im: naive_gradcam(clip, im, NAMES), images)
            print(f"{name:<40}{ours * 1e3:>12.1f}{naive * 1e3:>10.1f}{ours / naive:>8.2f}")
    print("goal: ratio <= 0.3 (10 classes per image)")


if __name__ == "__main__":
    main()

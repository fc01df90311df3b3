"""Grad-CAM over a batch of images, the class prompts encoded once, side by side with its peers and its floor,
on shapes-clip and on CLIP ViT-B/16 (random weights, 224 px), 10 classes, 32 images:

- foundseg: ``gradcam(clip, images, ClassPrompts(...))`` — the batch through the early blocks without grad,
  one forward with grad through the tapped block and after, one batched backward for every image and class;
- pytorch-grad-cam's way, per image: one forward with grad through the whole network, then one backward per
  class with the graph kept (the text encoded once here too);
- the floor: one no-grad forward of the same batch through the image encoder (what any method pays).

Then chapter 2's 500-image evaluation (``evaluate(gradcam_method(clip), ...)`` on shapes-clip) with the text
encoded once per class, against the same with the text re-encoded at every image as before.

    python benchmarks/gradcam_speed.py
"""
import tempfile
import time
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from foundseg.clip import ClassPrompts, gradcam
from foundseg.clip.inputs import prepare_image
from foundseg.data import CLASSES, ShapesDataset
from foundseg.eval.segmentation import evaluate, gradcam_method
from foundseg.models import capture_outputs, default_pooling, load_clip, pool_tokens
from foundseg.testing import save_random_clip

NAMES = list(CLASSES) + ["disc", "box"]
IMAGES = 32


def one_backward_per_class(clip, image, text):
    """pytorch-grad-cam's way: one forward with grad, then one backward per class with the graph retained."""
    model = clip.model
    pixels, _ = prepare_image(model, image)
    with capture_outputs({"x": model.vision_model.encoder.layers[-1].layer_norm1}) as acts, torch.enable_grad():
        tokens = model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
        scores = (F.normalize(pool_tokens(model, tokens, default_pooling(model)), dim=-1) @ text.T)[0]
        act = acts["x"]
        grads = [torch.autograd.grad(scores[k], act, retain_graph=k < len(text) - 1)[0] for k in range(len(text))]
    return [torch.relu((g[0, 1:].mean(0) * act[0, 1:]).sum(-1)).detach() for g in grads]


@torch.no_grad()
def forward_floor(clip, images):
    """One no-grad forward of the batch through the image encoder."""
    pixels = torch.cat([prepare_image(clip.model, image)[0] for image in images])
    return clip.model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state


def best_of(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def chapter_2_evaluation(clip, n=500):
    """Seconds of chapter 2's Grad-CAM evaluation over ``n`` test images: text encoded once per class, and
    re-encoded at every image (each image's classes encoded afresh, as before ClassPrompts)."""
    data = ShapesDataset("test", n)
    start = time.perf_counter()
    once = evaluate(gradcam_method(clip), data, progress=False)
    t_once = time.perf_counter() - start
    fresh = lambda image, names: gradcam(clip, image, names).maps  # noqa: E731
    start = time.perf_counter()
    every = evaluate(fresh, data, progress=False)
    return t_once, time.perf_counter() - start, abs(once["mIoU"] - every["mIoU"])


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        models = {"shapes-clip (64 px)": (load_clip("shapes-clip"), 64),
                  "CLIP ViT-B/16, random weights (224 px)": (load_clip(str(save_random_clip(tmp))), 224)}
        print(f"per image, {IMAGES} images, {len(NAMES)} classes, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads")
        print(f"{'model':<40}{'foundseg ms':>12}{'peer ms':>9}{'ratio':>7}{'floor ms':>10}{'ratio':>7}")
        for name, (clip, size) in models.items():
            images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(IMAGES)]
            prompts = ClassPrompts(clip, NAMES)
            text = prompts.embeddings(NAMES)
            ours = best_of(lambda: gradcam(clip, images, prompts, batch_size=IMAGES)) / IMAGES  # noqa: B023
            peer = best_of(lambda: [one_backward_per_class(clip, im, text) for im in images], 1) / IMAGES  # noqa: B023
            floor = best_of(lambda: forward_floor(clip, images)) / IMAGES  # noqa: B023
            print(f"{name:<40}{ours * 1e3:>12.1f}{peer * 1e3:>9.1f}{ours / peer:>7.2f}{floor * 1e3:>10.1f}"
                  f"{ours / floor:>7.2f}")
        print("ratios: foundseg's time over pytorch-grad-cam's way (goal <= 0.6) and over the no-grad forward "
              "(goal <= 1.5)")
    with mock.patch.dict("os.environ", TQDM_DISABLE="1"):
        once, every, diff = chapter_2_evaluation(load_clip("shapes-clip"))
    print(f"chapter 2's 500-image Grad-CAM evaluation on shapes-clip: {once:.1f} s with the text encoded once, "
          f"{every:.1f} s re-encoding it at every image ({once / every:.2f}x); mIoU differs by {diff:.1e}")


if __name__ == "__main__":
    main()

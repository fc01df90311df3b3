"""Cross-attention capture cost, side by side on shapes-sd and on Stable Diffusion 1.5 (random weights, 64 px):

1. time of a 50-step generation with last-step capture versus the plain pipeline (goal <= 1.15x);
2. bytes held for maps with every-step capture of all cross-attention layers at 10, 25 and 50 steps:
   foundseg's running sums (the chosen words, heads averaged) versus prompt-to-prompt's AttentionStore, which
   also sums across steps but keeps every head and every one of the 77 tokens of each layer of at most
   32 × 32 pixels (flat in steps too), and versus a store-every-map variant that keeps each step's maps
   (grows with the steps; no peer does this, it shows what summing saves). Goal: flat in steps, and a small
   fraction of the AttentionStore.

    python benchmarks/attention_capture.py
"""
import tempfile
import time

import torch

from foundseg.diffusion import CrossAttentionRecorder, cross_attention_layers, token_indices
from foundseg.models import load_sd
from foundseg.testing import save_random_sd

PROMPT, WORDS = "a red circle and a blue square", ["circle", "square"]


class StoreEveryMap:
    """Keep every attention probability tensor of every cross-attention layer at every step."""

    def __init__(self, unet):
        self.unet, self.maps = unet, []

    def add(self, layer, probs):
        self.maps.append(probs)

    def __enter__(self):
        self.original = dict(self.unet.attn_processors)
        layers = set(cross_attention_layers(self.unet))
        store = self

        class Keep:
            def __init__(self, name, inner):
                self.name, self.inner = name, inner

            def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
                if encoder_hidden_states is not None:
                    q = attn.head_to_batch_dim(attn.to_q(hidden_states))
                    k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
                    store.add(self.name, attn.get_attention_scores(q, k, None).detach())
                return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kw)

        self.unet.set_attn_processor({n: Keep(n, p) if n[: -len(".processor")] in layers else p
                                      for n, p in self.original.items()})
        return self

    def __exit__(self, *exc):
        self.unet.set_attn_processor(dict(self.original))

    def nbytes(self):
        return sum(m.numel() * m.element_size() for m in self.maps)


class AttentionStoreSum(StoreEveryMap):
    """prompt-to-prompt's AttentionStore: per cross-attention layer of at most 32 × 32 pixels, the sum over
    steps of the full attention probabilities (every head, every token)."""

    def __init__(self, unet):
        super().__init__(unet)
        self.sums = {}

    def add(self, layer, probs):
        if probs.shape[1] <= 32 ** 2:
            self.sums[layer] = self.sums.get(layer, 0) + probs

    def nbytes(self):
        return sum(m.numel() * m.element_size() for m in self.sums.values())


def timed(fn, repeats=2):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def run(name, pipe, size):
    def plain(steps=50):
        pipe(PROMPT, height=size, width=size, num_inference_steps=steps, output_type="latent",
             generator=torch.Generator().manual_seed(0))

    groups = token_indices(pipe.tokenizer, PROMPT, WORDS)

    def captured(steps=50):
        with CrossAttentionRecorder(pipe.unet, groups, steps=[-1], total_steps=steps, conditional_half=True):
            plain(steps)

    repeats = 2 if size <= 32 else 1
    t_plain, t_capture = timed(plain, repeats), timed(captured, repeats)
    print(f"{name}: 50-step generation {t_plain:.2f} s plain, {t_capture:.2f} s with last-step capture "
          f"-> {t_capture / t_plain:.3f}x (goal <= 1.15x)")
    for steps in (10, 25, 50):
        with CrossAttentionRecorder(pipe.unet, groups, steps="all", conditional_half=True) as rec:
            plain(steps)
        ours = sum(t.numel() * t.element_size() for t in rec.sums.values())
        with AttentionStoreSum(pipe.unet) as p2p:
            plain(steps)
        with StoreEveryMap(pipe.unet) as every:
            plain(steps)
        print(f"  {steps:>2} steps: foundseg {ours / 1024:8.1f} KiB | AttentionStore (sum) {p2p.nbytes() / 1024:9.1f} KiB"
              f" -> {ours / p2p.nbytes():.4f}x | store-every-map {every.nbytes() / 1024:10.1f} KiB"
              f" -> {ours / every.nbytes():.4f}x")


def main():
    torch.manual_seed(0)
    run("shapes-sd (32 px)", load_sd("shapes-sd"), 32)
    with tempfile.TemporaryDirectory() as tmp:
        run("SD 1.5, random weights (64 px)", load_sd(str(save_random_sd(tmp))), 64)


if __name__ == "__main__":
    main()

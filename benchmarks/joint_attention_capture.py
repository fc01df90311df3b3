"""Joint-attention capture cost on diffusion transformers, side by side on SD3's and FLUX.1's transformer
classes (random weights, a few layers of the published widths' heads, a 32 × 32 latent):

1. time of 20 transformer calls with capture at the last call versus without (goal <= 1.15x);
2. bytes held for maps with capture at every call of every joint-attention layer after 10, 25 and 50 calls:
   foundseg's running sums (two words, heads averaged) versus keeping each call's image→text probabilities
   (every head, every text token; what a recorder that stores maps per step holds). Goal: flat in calls.
3. ConceptAttention (three concepts): time of the same 20 calls (the concept stream runs at every call through
   the double-stream blocks, maps at the last) and its bytes held after 10, 25 and 50 calls recorded.

    python benchmarks/joint_attention_capture.py
"""
import time

import torch

from foundseg.diffusion import ConceptAttention, JointAttentionRecorder
from foundseg.testing import random_transformer

GROUPS, TEXT = [[1], [4, 5]], 77


def sd3():
    model = random_transformer("sd3-medium", num_layers=4, num_attention_heads=4, joint_attention_dim=256,
                               caption_projection_dim=256, pooled_projection_dim=64, sample_size=32).eval()
    g = torch.Generator().manual_seed(0)
    return model, dict(hidden_states=torch.randn(1, 16, 32, 32, generator=g),
                       encoder_hidden_states=torch.randn(1, TEXT, 256, generator=g),
                       pooled_projections=torch.randn(1, 64, generator=g), timestep=torch.tensor([500]))


def flux():
    model = random_transformer("flux-schnell", num_layers=2, num_single_layers=4, num_attention_heads=4,
                               joint_attention_dim=256, pooled_projection_dim=64).eval()
    g = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")  # 32 x 32 latent, 2 x 2 packed
    return model, dict(hidden_states=torch.randn(1, 256, 64, generator=g),
                       encoder_hidden_states=torch.randn(1, TEXT, 256, generator=g),
                       pooled_projections=torch.randn(1, 64, generator=g), timestep=torch.tensor([0.5]),
                       img_ids=torch.stack([torch.zeros(256), rows.flatten(), cols.flatten()], -1),
                       txt_ids=torch.zeros(TEXT, 3))


class KeepEveryCall(JointAttentionRecorder):
    """Keeps each call's full image→text probabilities (every head, every text token) instead of summing."""

    def add(self, name, attn, hidden_states, encoder_hidden_states, image_rotary_emb):
        from foundseg.diffusion.joint_attention import image_queries_and_keys

        query, key, text = image_queries_and_keys(attn, hidden_states, encoder_hidden_states, image_rotary_emb,
                                                  self.text_length)
        probs = (query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5).softmax(-1)[..., text]
        self.sums.setdefault("kept", []).append(probs)


def nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


@torch.no_grad()
def run(name, model, inputs):
    def calls(n, recorder=None):
        if recorder is None:
            for _ in range(n):
                model(**inputs)
            return None
        with recorder as rec:
            for _ in range(n):
                model(**inputs)
        return rec

    calls(2)
    start = time.perf_counter()
    calls(20)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    calls(20, JointAttentionRecorder(model, GROUPS, steps=[-1], total_steps=20))
    captured = time.perf_counter() - start
    print(f"{name}: 20 calls {plain:.2f} s plain, {captured:.2f} s with last-call capture -> "
          f"{captured / plain:.3f}x (goal <= 1.15x)")
    concepts = torch.randn(3, inputs["encoder_hidden_states"].shape[-1], generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    calls(20, ConceptAttention(model, concepts, steps=[-1], total_steps=20))
    concept = time.perf_counter() - start
    print(f"  ConceptAttention: {concept:.2f} s -> {concept / plain:.3f}x the plain calls")
    for n in (10, 25, 50):
        ours = nbytes(calls(n, JointAttentionRecorder(model, GROUPS)).sums.values())
        kept = nbytes(calls(n, KeepEveryCall(model, GROUPS)).sums["kept"])
        concept_bytes = nbytes(calls(n, ConceptAttention(model, concepts)).sums.values())
        print(f"  {n:>2} calls: foundseg {ours / 1024:7.1f} KiB | every call kept {kept / 2**20:8.1f} MiB "
              f"-> {ours / kept:.5f}x | ConceptAttention {concept_bytes / 1024:.1f} KiB")


def main():
    torch.manual_seed(0)
    run("SD3 transformer class (4 joint layers)", *sd3())
    run("FLUX.1 transformer class (2 double + 4 single layers)", *flux())


if __name__ == "__main__":
    main()

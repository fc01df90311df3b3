"""Throughput of foundseg's ConfusionMatrix next to torchmetrics' MulticlassJaccardIndex on the same data:
512x512 label maps, 150 classes, 5% ignored pixels; and the agreement of the two mIoUs (every class occurs
in the ground truth here, where their semantics coincide).

    python benchmarks/metrics_speed.py
"""
import time

import numpy as np
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from foundseg.eval import ConfusionMatrix

N, SIZE, CLASSES = 50, 512, 150
rng = np.random.default_rng(0)
gts = [rng.integers(0, CLASSES, (SIZE, SIZE)) for _ in range(N)]
for g in gts:
    g[rng.random((SIZE, SIZE)) < 0.05] = 255
preds = [np.where(rng.random((SIZE, SIZE)) < 0.5, np.where(g == 255, 0, g), rng.integers(0, CLASSES, (SIZE, SIZE)))
         for g in gts]
tensors = [(torch.from_numpy(p), torch.from_numpy(g)) for p, g in zip(preds, gts)]

start = time.perf_counter()
cm = ConfusionMatrix(CLASSES)
for p, g in zip(preds, gts):
    cm.update(p, g)
ours = cm.compute()["mIoU"]
t_ours = time.perf_counter() - start

start = time.perf_counter()
tm = MulticlassJaccardIndex(num_classes=CLASSES, average="macro", ignore_index=255)
for p, g in tensors:
    tm.update(p, g)
theirs = float(tm.compute())
t_theirs = time.perf_counter() - start

print(f"{'':<34}{'images/s':>10}{'mIoU':>10}")
print(f"{'foundseg ConfusionMatrix':<34}{N / t_ours:>10.1f}{ours:>10.5f}")
print(f"{'torchmetrics MulticlassJaccardIndex':<34}{N / t_theirs:>10.1f}{theirs:>10.5f}")
print(f"speed ratio foundseg / torchmetrics: {t_theirs / t_ours:.2f}x; |mIoU difference| {abs(ours - theirs):.2e}")

"""Shapes-world rendering speed on one core: images per second at 32 and 64 px.

    python benchmarks/shapes_world_speed.py
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

from foundseg.data import sample  # noqa: E402

N = 3000
for size in (32, 64):
    sample("train", 0, size=size)
    start = time.perf_counter()
    for i in range(N):
        sample("train", i, size=size)
    rate = N / (time.perf_counter() - start)
    print(f"{size:>3} px: {rate:7.0f} images/s  (60,000 training images in {60000 / rate:5.1f} s; goal >= 1000/s at 64 px)")

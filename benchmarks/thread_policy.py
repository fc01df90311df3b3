"""The thread policy for the shapes-world models: torch's default (one thread per core) against one thread, and
against one thread per core with OpenMP's passive wait (``OMP_WAIT_POLICY=passive``: idle threads sleep instead
of spinning), on a quiet machine and on a busy one (a spinning process of the same priority on every core).

The workloads are the chapters' typical calls: one shapes-sd UNet pass on a re-noised image, one shapes-clip
Grad-CAM, one ODISE feature batch of 128 images. Each setting runs in its own process (torch's thread pool is
fixed once it starts), so the numbers are comparable within one run.

    python benchmarks/thread_policy.py
"""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

from busy_machine import spin

WORK = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from foundseg.models import load_clip, load_sd
from foundseg.clip import gradcam
from foundseg.data import batch, sample
from foundseg.diffusion import OdiseConfig, odise_features, renoise_attention, to_unit_range
pipe, clip = load_sd("shapes-sd"), load_clip("shapes-clip")
s = sample("test", 0)
images = batch("train", range(128))[0]
def timed(fn, n):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n
out = {"unet pass": timed(lambda: renoise_attention(pipe, s.image, s.caption, ["crescent"], t=200), 30),
       "grad-cam": timed(lambda: gradcam(clip, s.image, ["crescent"]), 30),
       "odise batch": timed(lambda: odise_features(pipe, to_unit_range(images), OdiseConfig(text="null")), 3)}
print(json.dumps(out))
"""


def run(threads: int, wait: str) -> dict:
    env = dict(os.environ, TQDM_DISABLE="1", OMP_WAIT_POLICY=wait)
    res = subprocess.run([sys.executable, "-c", WORK, str(threads)], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    cores = os.cpu_count()
    results = {}
    for load in ("quiet", "busy"):
        spinners = [mp.Process(target=spin, daemon=True) for _ in range(cores if load == "busy" else 0)]
        for p in spinners:
            p.start()
        time.sleep(1)
        try:
            for threads, wait in sorted({(1, "active"), (cores, "active"), (cores, "passive")}):
                results[(load, threads, wait)] = run(threads, wait)
        finally:
            for p in spinners:
                p.terminate()
    print(f"{cores} cores; seconds per call, and the ratio to one thread on the quiet machine")
    work = list(next(iter(results.values())))
    print(f"{'':<32}" + "".join(f"{w:>24}" for w in work))
    base = results[("quiet", 1, "active")]
    for (load, threads, wait), r in results.items():
        label = f"{load}, {threads} thread{'s' if threads > 1 else ''}" + (", passive wait" if wait == "passive" else "")
        print(f"{label:<32}"
              + "".join(f"{r[w]:>14.4f} s {r[w] / base[w]:>6.2f}x" for w in work))


if __name__ == "__main__":
    main()

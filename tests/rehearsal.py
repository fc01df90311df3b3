"""Rehearse the full scale on a CPU: every chapter executed top to bottom at FOUNDSEG_SCALE=full.

CLIP ViT-B/16, Stable Diffusion 1.5 and Stable Diffusion 3 medium (without T5) are written with random weights
from their published configs into a temporary directory, narrowed in width
(``foundseg.testing.real_architectures.NARROW``: image sizes, the 77-token context, layers and heads as published),
and the full scale is pointed at them through FOUNDSEG_CLIP_MODEL, FOUNDSEG_SD_MODEL and FOUNDSEG_DIT_MODEL.
FOUNDSEG_MAX_COUNT caps every count (images, steps, seeds) so that a CPU gets through; the numbers printed
mean nothing, only that every cell runs. Each chapter runs alone in an empty directory, as Colab opens it.
A cell that raises, or writes anything to stderr (a warning included), fails the rehearsal; a chapter whose
kernel stops answering (see :data:`CELL_TIMEOUT`) is executed once more.
Each chapter's wall time and, on a GPU, its peak ``torch.cuda.max_memory_allocated`` are printed.

    python tests/rehearsal.py [--max-count 2] [chapter.ipynb ...]     # CI, on a CPU (`make rehearsal`)
    python tests/rehearsal.py --max-count 0 --wide                     # on a GPU: full counts, published widths
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parent.parent / "book"


def stderr_outputs(nb) -> list[str]:
    """Text every code cell of the executed notebook ``nb`` wrote to stderr."""
    return [f"cell {i}: {out.get('text', '').strip()}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out.get("name") == "stderr"]


UNKNOWN_WORD = "UnknownWordWarning"

CELL_TIMEOUT = 900
"""Seconds a cell may run. nbclient now and then waits forever for the reply to a finished cell of a chapter
with widgets (jupyter/nbclient#312); such a chapter is executed once more in a new kernel."""

PEAK = "import torch\nprint('peak GiB', torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0)"
"""A last cell appended to each chapter's copy: the kernel's peak GPU memory."""


def rehearse(chapters, max_count: int, workdir: Path, narrow: bool = True) -> dict[str, tuple[float, float]]:
    """Execute each chapter at the full scale on random models (``narrow`` widths, or the published ones);
    ``max_count`` caps the counts (0: none). Returns (seconds, peak GPU GiB) per chapter."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from foundseg.testing import save_random_clip, save_random_sd, save_random_sd3

    os.environ.update(HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    models = workdir / "models"
    start = time.perf_counter()
    clip_dir = save_random_clip(models / "clip", narrow=narrow)
    sd_dir = save_random_sd(models / "sd", narrow=narrow)
    dit_dir = save_random_sd3(models / "sd3", narrow=narrow)
    print(f"random {'narrow' if narrow else 'full-width'} CLIP ViT-B/16, SD 1.5 and SD3 medium written in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    os.environ.update(FOUNDSEG_SCALE="full", FOUNDSEG_CLIP_MODEL=str(clip_dir), FOUNDSEG_SD_MODEL=str(sd_dir),
                      FOUNDSEG_DIT_MODEL=str(dit_dir))
    if max_count:
        os.environ["FOUNDSEG_MAX_COUNT"] = str(max_count)

    def run(chapter: Path) -> tuple[str, float, float, list[str]]:
        alone = workdir / chapter.stem
        alone.mkdir()
        shutil.copy(chapter, alone)
        if (BOOK / "data").is_dir():  # the stored evidence some chapters read
            shutil.copytree(BOOK / "data", alone / "data")
        start, failed = time.perf_counter(), []
        for attempt in (1, 2):
            nb = nbformat.read(alone / chapter.name, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(PEAK))
            try:
                NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                               resources={"metadata": {"path": str(alone)}}).execute()
                # the random models carry the shapes world's tokenizer, to which the full-scale cells' real-world
                # words are unknown: that warning is right here, and a real CLIP's tokenizer knows them
                failed += [f"{chapter.name} {line}" for line in stderr_outputs(nb) if UNKNOWN_WORD not in line]
            except CellExecutionError as err:  # a cell raised: its traceback
                failed.append(f"{chapter.name}: {err}")
            except Exception as err:  # the kernel's reply lost or the kernel gone, not the chapter's doing
                if attempt == 1:
                    print(f"{chapter.name}: {type(err).__name__} {err}; executing it again in a new kernel", flush=True)
                    continue
                failed.append(f"{chapter.name}: {type(err).__name__}: {err}")  # some carry no message
            break
        seconds = time.perf_counter() - start
        last = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
        peak = float(last.split()[-1]) if last.startswith("peak GiB") else float("nan")
        print(f"{chapter.name}: {seconds:.0f} s, peak GPU memory {peak:.2f} GiB", flush=True)
        return chapter.name, seconds, peak, failed

    results, failures = {}, []
    for chapter in chapters:
        name, seconds, peak, failed = run(chapter)
        results[name] = (seconds, peak)
        failures += failed
    if failures:
        raise SystemExit("rehearsal failed:\n" + "\n".join(failures))
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="notebooks (default: every chapter in book/)")
    parser.add_argument("--max-count", type=int, default=2, help="cap on every count a chapter uses (default 2; 0: none)")
    parser.add_argument("--wide", action="store_true", help="the published widths instead of the narrow models")
    args = parser.parse_args(argv)
    chapters = [c.resolve() for c in args.chapters] or sorted(BOOK.glob("*.ipynb"))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="foundseg-rehearsal-") as tmp:
        rehearse(chapters, args.max_count, Path(tmp), narrow=not args.wide)
    print(f"rehearsal passed: {len(chapters)} chapters at FOUNDSEG_SCALE=full in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

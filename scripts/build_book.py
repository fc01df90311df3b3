"""Build the book with every chapter executed afresh, the chapters run side by side (one per core).

    python scripts/build_book.py            # what `make book` runs; HTML in _build/html

The book's sources are copied to ``_build/executed``; each notebook there is executed by nbclient
(``jupyter-execute``) in its own process, the longest first, as many at once as there are cores; jupyter-book
then renders the executed copies without executing again. The notebooks in ``book/`` are never written.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "_build" / "executed"
LONGEST_FIRST = ["03_attention_noised_once", "06_diffusion_transformers", "02_clip_localizes", "05_survey",
                 "01_shapes_world", "04_odise_parts", "evidence"]
"""Chapters in order of their execution time on the shapes world (chapter 3 about 6 minutes, chapter 6 about 6,
the rest about 5 together); any other notebook runs after them."""
CELL_TIMEOUT = 900  # seconds, a safety net as in _config.yml: no cell takes over 180 s on an idle machine


def stage() -> list[Path]:
    """Copy the book's sources to ``STAGE`` with execution switched off in its configuration; return the
    staged notebooks, longest first."""
    shutil.rmtree(STAGE, ignore_errors=True)
    shutil.copytree(ROOT / "book", STAGE / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(ROOT / "_toc.yml", STAGE / "_toc.yml")
    config = (ROOT / "_config.yml").read_text()
    (STAGE / "_config.yml").write_text(re.sub(r"(?m)^(\s*execute_notebooks:).*$", r'\1 "off"', config))
    notebooks = sorted((STAGE / "book").glob("*.ipynb"))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    return sorted(notebooks, key=lambda p: rank.get(p.stem, len(rank)))


def execute(notebook: Path) -> tuple[Path, float]:
    """Execute ``notebook`` in place, in its own directory; raise if a cell fails."""
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("jupyter-execute")), "--inplace", f"--timeout={CELL_TIMEOUT}",
                    notebook.name], cwd=notebook.parent, check=True)
    return notebook, time.perf_counter() - start


def main() -> int:
    start = time.perf_counter()
    notebooks = stage()
    workers = int(os.environ.get("FOUNDSEG_BOOK_WORKERS", os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        for notebook, seconds in pool.map(execute, notebooks):
            print(f"executed {notebook.stem} in {seconds:.0f} s", flush=True)
    subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(STAGE), "--path-output",
                    str(ROOT), "-W", "--keep-going"], check=True)
    print(f"book built in {time.perf_counter() - start:.0f} s: {ROOT / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

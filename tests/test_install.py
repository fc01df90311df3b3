"""Installed the way Colab installs it: the wheel in a fresh environment, one chapter alone in an empty folder."""
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kwargs)


@pytest.mark.slow
def test_wheel_installs_and_a_chapter_runs_alone(tmp_path):
    # built from a copy, so that the build leaves no build/ folder in the checkout
    source = shutil.copytree(REPO, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build", "build", "*.egg-info", "__pycache__", ".foundseg-cache"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", source)
    wheel = next((tmp_path / "dist").glob("foundseg-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    # the torch build already here (Colab brings its own), then the wheel and what runs a notebook; without
    # compiling bytecode at install time (a third of the time; Python compiles what it imports)
    pip = [python, "-m", "pip", "install", "--quiet", "--no-compile"]
    run(*pip, f"torch=={version('torch').split('+')[0]}")
    run(*pip, wheel, "nbclient", "ipykernel")
    where = run(python, "-c", "import foundseg; print(foundseg.__file__)", cwd=tmp_path).stdout
    assert str(venv) in where and str(REPO) not in where

    alone = tmp_path / "colab"
    alone.mkdir()
    chapter = shutil.copy(REPO / "book" / "04_odise_parts.ipynb", alone)  # reads Table 1, the zoo and the data
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(FOUNDSEG_SCALE="shapes", FOUNDSEG_MAX_COUNT="2", TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    script = ("import nbformat, sys; from nbclient import NotebookClient; nb = nbformat.read(sys.argv[1], 4); "
              "NotebookClient(nb, timeout=600, kernel_name='python3').execute(); nbformat.write(nb, sys.argv[1])")
    run(python, "-c", script, chapter, cwd=alone, env=env)
    executed = json.loads(Path(chapter).read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "ODISE w/o IC" in text and "SAN-like: CLIP features only" in text  # the paper's table and the ablation
    assert not any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))

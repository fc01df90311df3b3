"""The project's own promises: two set-up commands, CI calling the test one, dependency lists in step,
an API page naming only what exists."""
import importlib
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_what_pyproject_lists():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert {r.replace(" ", "") for r in listed} == {r.replace(" ", "") for r in wanted}
    assert "torchvision" not in {_name(r) for r in wanted}


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", setup, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make book", "make test"]
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_every_chapter_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in (ROOT / "book").glob("*.ipynb"):
        assert f"book/{nb.stem}" in toc, nb.name


def test_chapter_text_has_no_control_characters():
    """A LaTeX backslash eaten by a string escape (\\frac → form feed + "rac") leaves control characters
    that MathJax renders as garbage without any error."""
    import json

    for page in [*(ROOT / "book").glob("*.ipynb"), *(ROOT / "book").glob("*.md")]:
        cells = json.loads(page.read_text())["cells"] if page.suffix == ".ipynb" else [{"source": page.read_text()}]
        for i, cell in enumerate(cells):
            text = "".join(cell["source"])
            bad = sorted({hex(ord(ch)) for ch in text if ord(ch) < 32 and ch not in "\n"})
            assert not bad, f"{page.name} cell {i}: control characters {bad}"


def test_executed_chapters_hold_no_progress_bars():
    """Chapters are executed with ``TQDM_DISABLE=1``: a stored progress widget would show as a bar stuck at 0%
    in the rendered book."""
    import json

    for nb in (ROOT / "book").glob("*.ipynb"):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            for out in cell.get("outputs", []):
                plain = "".join(out.get("data", {}).get("text/plain", ""))
                text = "".join(out.get("text", ""))
                assert "it/s]" not in text + plain and "0%|" not in text + plain, f"{nb.name} cell {i}: a progress bar"


def test_every_name_the_api_page_lists_exists():
    """A stale name in book/api.md fails the book's build (autodoc warns, the build runs with -W)."""
    text = (ROOT / "book" / "api.md").read_text()
    listed = [(module, name.strip()) for module, members in re.findall(r"automodule:: (\S+)\n\s+:members: (.*)", text)
              for name in members.split(",")]
    missing = [f"{module}.{name}" for module, name in listed if not hasattr(importlib.import_module(module), name)]
    assert listed and not missing, missing

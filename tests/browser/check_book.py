"""Open every page of the built book in headless Chromium and check what a reader would see.

For each page of the table of contents: it loads; every image has loaded (no broken image); every link to a
local file points to a file that exists; a notebook page shows at least as many figures as the notebook has
image outputs, and every image a cell outputs sits in a figure with a numbered, non-empty caption; math is
typeset by MathJax where the page has math; citations resolve (no "??" or raw {cite} roles); no output holds
an execution error; no output or table is wider than the page (text that would need a horizontal scroll bar).
A screenshot of each page goes to _build/screenshots/.

    python tests/browser/check_book.py            # after `make book`
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        pages += [c["file"] for c in part["chapters"]]
    return pages


def image_outputs(page: str) -> int:
    nb = ROOT / f"{page}.ipynb"
    if not nb.exists():
        return 0
    cells = json.loads(nb.read_text())["cells"]
    return sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))


def browser() -> webdriver.Chrome:
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def check_page(driver, page: str) -> list[str]:
    path = HTML / f"{page}.html"
    if not path.exists():
        return [f"{page}: {path} was not built"]
    driver.set_window_size(1280, 1600)  # every page read at one size, a vertical scroll bar included
    driver.get(path.as_uri())
    driver.execute_script("return document.fonts.ready")
    problems = []
    broken = driver.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    problems += [f"{page}: broken image {src}" for src in broken]
    for href in driver.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)"):
        url = urlparse(href)
        if url.scheme == "file" and not Path(unquote(url.path)).exists():
            problems.append(f"{page}: link to missing file {unquote(url.path)}")
    figures = driver.execute_script("return document.querySelectorAll('main img, article img').length")
    expected = image_outputs(page)
    if figures < expected:
        problems.append(f"{page}: {figures} figures shown, the notebook has {expected}")
    uncaptioned = driver.execute_script(  # myst-nb's cell option `figure` renders <figure> with <figcaption>
        "return [...document.querySelectorAll('.cell_output img')].filter(i => {"
        "  const cap = i.closest('figure') && i.closest('figure').querySelector(':scope > figcaption');"
        "  const text = cap && cap.querySelector('.caption-text');"
        "  return !(cap && cap.querySelector('.caption-number') && (text || cap).textContent.trim());"
        "}).map(i => i.getAttribute('src').split('/').pop())")
    problems += [f"{page}: an image output without a numbered caption: {src}" for src in uncaptioned]
    text = driver.execute_script("return document.querySelector('main') ? document.querySelector('main').innerText : ''")
    if "$$" in text:
        problems.append(f"{page}: raw $$ in the text: math was not recognised")
    has_math = driver.execute_script("return document.querySelectorAll('.math').length > 0")
    if has_math:
        driver.set_script_timeout(30)
        typeset = driver.execute_async_script(
            "const done = arguments[0];"
            "if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) { done(-1); return; }"
            "MathJax.startup.promise.then(() => done(document.querySelectorAll('mjx-container').length));")
        if typeset == -1:
            # MathJax comes from a CDN: offline it cannot load, so check the math is marked up for it
            marked = driver.execute_script(
                "return [...document.querySelectorAll('.math')].every(e => /\\\\[\\[(]/.test(e.textContent))")
            print(f"    {page}: MathJax not loadable offline; math marked up for it: {marked}")
            if not marked:
                problems.append(f"{page}: math present but not marked up for MathJax")
        elif not typeset:
            problems.append(f"{page}: math present but not typeset by MathJax")
    if "??" in text or "{cite" in text:
        problems.append(f"{page}: unresolved citation")
    errors = driver.execute_script(  # only cell outputs: documented exceptions in API examples are fine
        "return [...document.querySelectorAll('.output.error, .cell_output .traceback, pre.ansi-red-fg')].length"
        " + [...document.querySelectorAll('.cell_output')].filter("
        "e => e.textContent.includes('Traceback (most recent call last)')).length")
    if errors:
        problems.append(f"{page}: an output cell shows an execution error")
    overflowing = driver.execute_script(  # an output, table or code line wider than its box scrolls sideways
        "return [...document.querySelectorAll('.cell_output pre, .cell_output table, main table, "
        ".cell_output img')].filter(e => e.scrollWidth > e.clientWidth + 2 || "
        "e.getBoundingClientRect().right > document.querySelector('main').getBoundingClientRect().right + 2)"
        ".map(e => e.tagName + ': ' + e.textContent.slice(0, 60))")
    problems += [f"{page}: wider than the page: {what}" for what in overflowing]
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 12000))
    driver.save_screenshot(str(SHOTS / f"{page.replace('/', '_')}.png"))
    return problems


def main() -> int:
    if not HTML.exists():
        print(f"no built book in {HTML}: run `make book` first", file=sys.stderr)
        return 2
    driver = browser()
    problems = []
    try:
        for page in toc_pages():
            found = check_page(driver, page)
            print(f"{'ok ' if not found else 'BAD'} {page}")
            problems += found
    finally:
        driver.quit()
    for p in problems:
        print("  " + p)
    print(f"{len(toc_pages()) - len({p.split(':')[0] for p in problems})} passed, "
          f"{len({p.split(':')[0] for p in problems})} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

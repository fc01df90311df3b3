# `make book`: virtual environment, foundseg with its book extras, every chapter executed on the
# shapes world, HTML book in _build/html.  `make test`: unit tests and nbval over every notebook.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; on a GPU machine use e.g. `make book TORCH=torch`.
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
BIN := $(VENV)/bin

.PHONY: book html test recompute rehearsal notebooks browser-check clean

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)" $(TORCH_PIP_ARGS)
	$(BIN)/pip install --quiet -e ".[book,test]"
	touch $@

# Every chapter executed afresh, side by side (one per core), into _build/executed; then rendered.
book: $(VENV)/installed
	$(BIN)/python scripts/build_book.py

# The HTML book from the outputs stored in the notebooks, without executing them (`make test` checks with
# nbval that a fresh execution reproduces them).
html: $(VENV)/installed
	mkdir -p _build
	sed 's/^\(  *execute_notebooks:\).*/\1 "off"/' _config.yml > _build/config-stored.yml
	$(BIN)/jupyter-book build . --config _build/config-stored.yml -W --keep-going

test: $(VENV)/installed
	$(BIN)/python -m pytest

# The results chapters read from book/data/ recomputed from scratch and compared (tests marked `recompute`),
# one after the other, each on every core as the stored results were computed.
recompute: $(VENV)/installed
	$(BIN)/python -m pytest -m recompute -n 0 tests/test_book_results.py

# Every chapter at FOUNDSEG_SCALE=full on random-weight CLIP ViT-B/16 and SD 1.5 (narrow widths, counts capped).
rehearsal: $(VENV)/installed
	$(BIN)/python tests/rehearsal.py

# Open every page of the book (rendered by `make html`) in headless Chromium (Debian's chromium and
# chromium-driver).
browser-check: html
	$(BIN)/pip install --quiet -e ".[browser]"
	$(BIN)/python tests/browser/check_book.py

clean:
	rm -rf _build

# Re-execute every chapter in place with the environment the tests use, to refresh the stored outputs.
notebooks: $(VENV)/installed
	TQDM_DISABLE=1 HF_HUB_OFFLINE=1 FOUNDSEG_SCALE=shapes $(BIN)/jupyter-execute --inplace --timeout=1800 book/*.ipynb

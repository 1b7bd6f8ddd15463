# polymodal — set-up, demo, tests and benchmarks. `make demo` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build (see ../shared/OFFLINE_MODELS.md).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Debian tools and real data the demo and tests use (tests that need one skip, saying so, without it):
# espeak-ng speaks test sentences; ffmpeg builds test videos; chromium runs the search page's browser
# test; tesseract is the second OCR engine; Tux Paint stamps, emoji and the word list are real
# captioned images and words for captioning and alignment tests.
DEBIAN_DEPS := espeak-ng ffmpeg sox chromium tesseract-ocr tesseract-ocr-eng wordnet-base \
	tuxpaint-stamps-default fonts-noto-color-emoji unicode-data wamerican librsvg2-bin

system-deps:
	@missing=$$(for p in $(DEBIAN_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages (tests needing them will skip): sudo apt-get install $$missing"; fi; \
	fi

demo: setup system-deps
	$(BIN)/python examples/demo.py --out out/demo

test: setup system-deps
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts

bench: setup
	$(BIN)/python benchmarks/run_all.py --out BENCHMARKS.results.json

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

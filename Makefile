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

# Debian tools used by the demo and tests: espeak-ng speaks test sentences.
system-deps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null; \
	  else echo "install espeak-ng (sudo apt-get install espeak-ng) for the speech demo and tests"; fi; }

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

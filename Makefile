# Set-up and everyday commands. A fresh machine needs only `make demo` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, pinned, so pip takes the local CPU wheel instead of a CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Where this workplace keeps the CPU wheel (pip's config usually points there already).
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: venv demo test lint bench clean

$(BIN)/nnrecipe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/nnrecipe

venv: $(BIN)/nnrecipe

demo: venv
	$(BIN)/nnrecipe demo

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/loop_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# Set-up and everyday commands. A fresh machine needs only `make demo` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, pinned, so pip takes the local CPU wheel instead of a CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Where this workplace keeps the CPU wheel (pip's config usually points there already).
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: venv demo test lint bench clean system-packages

$(BIN)/nnrecipe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/nnrecipe

venv: $(BIN)/nnrecipe

demo: venv
	$(BIN)/nnrecipe demo

test: venv system-packages
	$(BIN)/python -m pytest

# Debian packages some tests drive: headless Chromium (the report's browser test) and
# espeak-ng (it speaks the digits of the audio test). Installed here, not by hand; without
# apt-get (not Debian) nothing is installed and those tests are skipped with a reason.
CHROMIUM := /usr/bin/chromium
ESPEAK := /usr/bin/espeak-ng
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

system-packages:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(ESPEAK) ]; then \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium espeak-ng; \
	  else echo "no apt-get: chromium/espeak-ng not installed; their tests will be skipped"; fi; \
	fi

lint: venv
	$(BIN)/ruff check src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/loop_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

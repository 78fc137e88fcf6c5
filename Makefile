# Fresh machine to results in one command: every target bootstraps .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo bench bench-gpu clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/gnsweep launch sweeps/demo.yaml
	$(BIN)/gnsweep report demo

bench: $(STAMP)
	$(BIN)/python -m bench

bench-gpu: $(STAMP)
	bench/gpu_check.sh bench-gpu.txt

clean:
	rm -rf results/demo data/digits

# Fresh machine to results in one command: every target bootstraps .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# tests run in parallel workers (pytest-xdist), a module at a time to a worker, in the order tests/conftest.py gives
# (longest first; xdist would otherwise order modules by their number of tests); three workers keep two cores busy
# while launches wait on Ray
TEST_WORKERS ?= 3
XDIST := -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

.PHONY: setup test test-fast demo bench bench-gpu clean

# uv installs what pip would (same resolution) in a fraction of the time: 46 s against 98 s for a fresh .venv here,
# most of the set-up of a fresh `make test`. Bytecode is compiled at install, as pip does, because an environment with
# PYTHONDONTWRITEBYTECODE set would otherwise compile TensorFlow at every import. INSTALLER=pip skips uv; pip is also
# the fallback where uv cannot be installed or cannot reach an index (uv reads no pip.conf).
INSTALLER ?= uv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ "$(INSTALLER)" = uv ] && $(BIN)/python -m pip install -q uv \
			&& $(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -e ".[test]"; then :; \
	else echo "installing with pip"; $(BIN)/python -m pip install -q --upgrade pip \
			&& $(BIN)/python -m pip install -q -e ".[test]"; fi
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/gnsweep launch sweeps/demo.yaml
	$(BIN)/gnsweep report demo

bench: $(STAMP)
	$(BIN)/python -m bench

bench-gpu: $(STAMP)
	bench/gpu_check.sh bench-gpu.txt

clean:
	rm -rf results/demo data/digits

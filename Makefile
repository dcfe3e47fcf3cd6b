# unigrid: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PERSONS ?= 20000
SEED ?= 7
BENCH_PERSONS ?= 1000000

.PHONY: setup demo test test-fast lint bench clean

$(BIN)/python:
	@command -v uv >/dev/null 2>&1 || $(PY) -m pip install -q uv
	uv venv -q --python $(PY) $(VENV)

# Installs exactly the tested set (requirements.lock), then the project itself without resolving again,
# then compiles the bytecode.
setup: $(BIN)/python
	uv pip install -q --python $(BIN)/python -r requirements.lock
	uv pip install -q --python $(BIN)/python --no-deps -e .
	@# Bytecode once, here: with PYTHONDONTWRITEBYTECODE set (as on the project machine) every
	@# stage process would otherwise compile each module it imports (about 4 s of CPU for
	@# pandas + GX + Splink). Up-to-date files are skipped, so a repeated setup costs ~2 s.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib unigrid connectors quality matching warehouse benchmarks dags > /dev/null

demo: setup
	$(BIN)/unigrid generate --persons $(PERSONS) --seed $(SEED) --out var/city --force
	$(BIN)/unigrid run --city var/city

test: setup
	bash scripts/system-deps.sh
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: setup
	$(BIN)/python -m pytest -n 2 -m "not slow"

# City-scale benchmark (issue #8): prints per-stage time / memory and accuracy vs the baselines.
bench: setup
	$(BIN)/python -m unigrid.bench --persons $(BENCH_PERSONS)

clean:
	rm -rf var/* .pytest_cache

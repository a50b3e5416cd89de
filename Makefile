# `make demo` and `make test` work on a fresh machine: they create .venv and install from this repo.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck bench deploy-check clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench,sim]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/surge simulate --out out/demo
	$(BIN)/surge plan --snapshot examples/snapshot.json

test: $(STAMP)
	$(BIN)/ruff check autoscaler simulator benchmarks tests
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check autoscaler simulator benchmarks tests

typecheck: $(STAMP)
	$(BIN)/mypy

# checkov and hadolint on deploy/ (manifests, Dockerfile, Bicep), with the other deploy tests.
deploy-check: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,deploy-check]'
	$(BIN)/pytest tests/deploy

bench: $(STAMP)
	$(BIN)/surge bench planner --json benchmarks/results/planner.json
	$(BIN)/surge bench sim --json benchmarks/results/sim.json

clean:
	rm -rf $(VENV) build *.egg-info

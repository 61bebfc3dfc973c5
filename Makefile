# `make run` and `make test` work on a fresh clone with only Python 3.11+:
# each creates .venv when missing and installs the pinned dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint validate test-flows bench bench-router bench-webhook tune-router docker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/citizen-bot serve

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check bot webhook tests bench
	$(BIN)/ruff format --check bot webhook tests bench
	$(BIN)/mypy

validate: $(STAMP)
	$(BIN)/citizen-bot validate

test-flows: $(STAMP)
	$(BIN)/citizen-bot test-flows

bench: $(STAMP)
	$(BIN)/python -m bench.engine

bench-router: $(STAMP)
	$(BIN)/python -m bench.router

bench-webhook: $(STAMP)
	$(BIN)/python -m bench.webhook

tune-router: $(STAMP)
	$(BIN)/python -m bench.tune_router

# The production image (Dockerfile): python:3.11-slim, non-root, pinned dependencies.
docker:
	docker build -t citizen-bot .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

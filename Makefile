# Two commands matter: `make demo` (replay the bundled sample) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Node tools the tests use (Microsoft's KQL language service), exactly as locked.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/python -m detectors replay samples/contoso-sample.jsonl.gz --out alerts.jsonl --show

test: $(STAMP) node_modules/.installed
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check detectors tests benchmarks function_app.py
	$(BIN)/ruff format --check detectors tests benchmarks function_app.py
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/replay_throughput.py

clean:
	rm -rf $(VENV) node_modules alerts.jsonl .pytest_cache .mypy_cache .ruff_cache

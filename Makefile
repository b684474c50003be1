# Two commands matter: `make demo` (replay the bundled sample) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench quality clean infra-check chromium

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# checkov has a virtual environment of its own: it pins an older pycep-parser than the tests use.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# Node tools the tests use (Microsoft's KQL language service), exactly as locked.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/python -m detectors replay samples/contoso-sample.jsonl.gz --out alerts.jsonl --show

test: $(STAMP) node_modules/.installed chromium infra-check
	$(BIN)/python -m pytest

# The replay report's tests render it in headless Chromium (Debian's package); they fail, not
# skip, without it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# checkov over the Bicep templates: fails on any failed check or any file it cannot parse.
infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python infra/checkov_gate.py

lint: $(STAMP)
	$(BIN)/ruff check detectors tests benchmarks function_app.py
	$(BIN)/ruff format --check detectors tests benchmarks function_app.py
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/replay_throughput.py

quality: $(STAMP)
	$(BIN)/python benchmarks/detection_quality.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules alerts.jsonl .pytest_cache .mypy_cache .ruff_cache

# taskrail: `make demo` runs the platform end to end on this machine; `make test` runs every test.
# Each target sets itself up (virtualenv with the pinned dependencies) on first use.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The CDK CLI and the Node.js it and jsii run on, pinned in package.json (infra/node_runtime.py).
CDK := npx --no-install cdk
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup test lint format synth cdk-synth asl asl-check demo unit soak bench mutation test-count clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's chromium for the browser tests (Playwright never downloads a browser; tests never install anything).
# Idempotent: a file target, skipped once chromium is there. Installing needs root, as CI runs.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then echo "$(CHROMIUM) is missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# The functions' dependency layer (infra/layer.py, infra/constructs/functions.py): the libraries the handlers import,
# at the versions the venv runs, as wheels for Lambda's python3.13 on arm64. Rebuilt only when those pins change (the
# stamp is their digest); a synth refuses a missing or stale layer. Tests never build it (no download in tests).
LAYER_STAMP := build/lambda-layer/.pins.sha256
$(LAYER_STAMP): pyproject.toml $(VENV)/.installed infra/layer.py
	$(PY) -m infra.layer
	touch $@

setup: $(VENV)/.installed node_modules/.installed $(CHROMIUM) $(LAYER_STAMP)

# The README's picture of the console (docs/console.png): the console's browser test, told to write it.
.PHONY: screenshot
screenshot: setup
	TASKRAIL_UPDATE_SCREENSHOT=1 $(VENV)/bin/pytest tests/e2e/test_console.py -q -p no:randomly -k poison_task

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lambdas workflows infra taskrail bench
	# The import contracts of pyproject.toml [tool.importlinter]; lambdas/ is the Lambda bundle's root.
	PYTHONPATH=lambdas $(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

synth: setup
	$(PY) -m infra.synth

# The same app through the pinned CDK CLI, as `cdk deploy` synthesizes it (into cdk.json's output folder).
cdk-synth: setup
	$(CDK) synth --quiet --no-notices

asl: synth

asl-check: setup
	$(PY) -m infra.synth --check

test: setup lint
	$(VENV)/bin/pytest

unit: setup
	$(VENV)/bin/pytest tests/unit tests/local -q

demo: setup
	$(PY) -m taskrail.demo

# 1,000 tasks under injected faults (benchmark-style; not part of `make test`, which runs a 100-task soak).
soak: setup
	$(PY) -m taskrail.soak --tasks 1000

bench: setup
	$(PY) -m bench.run

# Test strength (docs/TEST-STRENGTH.md): a seeded sample of mutants per area, each run against its area's tests,
# in a scratch copy of HEAD. Too slow for `make test`. Every mutant: make mutation MUTATION_ARGS=--full
MUTATION_ARGS ?= --budget 15
mutation: setup
	$(PY) -m bench.mutation $(MUTATION_ARGS)

# Test functions and their parametrized cases, counted separately (README).
test-count: setup
	$(PY) -m tests.count

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache

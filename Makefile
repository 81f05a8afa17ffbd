# taskrail: `make demo` runs the platform end to end on this machine; `make test` runs every test.
# Each target sets itself up (virtualenv with the pinned dependencies) on first use.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup test lint format synth asl asl-check demo unit soak bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lambdas workflows infra taskrail bench

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

synth: setup
	$(PY) -m infra.synth

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

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache

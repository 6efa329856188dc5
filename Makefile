# One entry point for developers and CI. Every target installs what it needs by itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
MLFLOW := .venv-mlflow
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# pytest workers (pytest-xdist): the suite is CPU-bound and this machine class has 2 cores;
# `make unit PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2

# Offline and quiet: no instance metadata probing, no SDK telemetry, no Node end-of-life banner.
export AWS_EC2_METADATA_DISABLED := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true

.PHONY: help install synth lint unit scan test demo bench lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt constraints-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

# The local MLflow tracking server of the rehearsal and its tests (a development dependency only;
# docs/decisions/0020-experiment-tracking.md). The empty store saves each server start the
# schema migrations.
$(MLFLOW)/.installed: requirements-mlflow.txt constraints-mlflow.txt
	test -x $(MLFLOW)/bin/python || $(PYTHON) -m venv $(MLFLOW)
	$(MLFLOW)/bin/pip install --quiet --disable-pip-version-check -r requirements-mlflow.txt
	rm -f $(MLFLOW)/empty-store.db
	$(MLFLOW)/bin/python -c "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as S; S('sqlite:///$(MLFLOW)/empty-store.db', '$(MLFLOW)/unused-artifacts')"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(TOOLS)/.installed $(MLFLOW)/.installed node_modules/.installed ## Create .venv, .venv-tools, .venv-mlflow and node_modules

synth: $(VENV)/.installed node_modules/.installed ## Synthesize every environment into cdk.out (offline; cdk-nag gates it)
	rm -rf cdk.out
	$(CDK) synth --quiet

lint: $(VENV)/.installed ## ruff (lint and format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

unit: $(VENV)/.installed $(TOOLS)/.installed $(MLFLOW)/.installed node_modules/.installed ## pytest (IAM tests read AWS's reference data in .venv-tools; tracking tests run .venv-mlflow's server)
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS)

scan: synth $(TOOLS)/.installed ## cfn-lint and checkov on the synthesized templates
	find cdk.out -name '*.template.json' -print0 | xargs -0 $(TOOLS)/bin/cfn-lint --ignore-checks W3005 --
	$(TOOLS)/bin/checkov -d cdk.out --framework cloudformation --skip-download --quiet --compact

test: lint unit scan ## Everything CI runs: lint, types, tests, synth with cdk-nag, cfn-lint, checkov

# The demo's synth turns the sandbox's experiment tracking on (a context override, for this synth
# only): the rehearsal then maps the tracking server to a local `mlflow server`.
demo: $(VENV)/.installed $(MLFLOW)/.installed node_modules/.installed ## Rehearse locally: deploy the sandbox (tracking on) to moto on 127.0.0.1, run the pipeline twice with a local MLflow server (ARGS="--help")
	rm -rf cdk.out
	$(CDK) synth --quiet -c nova-sft:tracking=sandbox=create
	$(PY) -m pipeline.rehearsal $(ARGS)

bench: synth ## Run every benchmark in benchmarks/ and print its figures
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lock: $(VENV)/.installed $(TOOLS)/.installed $(MLFLOW)/.installed ## Re-pin every transitive dependency after changing a direct pin
	$(VENV)/bin/pip freeze --exclude-editable | sort -f > constraints.txt
	$(TOOLS)/bin/pip freeze --exclude-editable | sort -f > constraints-tools.txt
	$(MLFLOW)/bin/pip freeze --exclude-editable | sort -f > constraints-mlflow.txt

clean: ## Remove build output (keeps the virtualenvs)
	rm -rf cdk.out .cache rehearsal-out .pytest_cache .mypy_cache .ruff_cache

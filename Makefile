# The product's commands. `make help` lists them.
SHELL := /bin/bash
# The functions run on Cloud Functions' python312 runtime (infra/terraform/functions.tf); the virtualenv is made
# with the same minor version (dev/find_python.sh finds one), so the local stack runs what the cloud runs.
RUNTIME_PYTHON := 3.12
PYTHON ?= $(shell bash dev/find_python.sh $(RUNTIME_PYTHON) 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-python$(RUNTIME_PYTHON)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test-tools run test test-unit test-integration test-e2e migrate api-key clean docs-screenshot

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

install: $(STAMP) ## install everything into .venv (idempotent)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON)" || { bash dev/find_python.sh $(RUNTIME_PYTHON); exit 1; }
	@# A virtualenv of another Python (an older checkout's) is made again rather than upgraded in place.
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(RUNTIME_PYTHON)".split("."))))' \
		2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@# setuptools warns at length that an editable install is one; the product is meant to be one here.
	@PYTHONWARNINGS=ignore $(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
		-e . 2>/dev/null || PYTHONWARNINGS=ignore $(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

test-tools: ## install the tools the API document tests drive (Chromium, newman, openapi-python-client)
	@bash dev/install_test_tools.sh

run: install ## start the whole local stack in the foreground (Ctrl-C stops it)
	@$(PY) -m dev.stack

test: install test-tools ## run every test tier (unit, integration, e2e)
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install ## services with fakes, on a real PostgreSQL
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install ## each function through functions-framework on real parts
	@$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: install test-tools ## the running local stack over HTTP
	@$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

migrate: install ## apply pending SQL migrations (DATABASE_URL, Cloud SQL settings, or the local database)
	@$(PY) -m ops migrate

api-key: install ## mint an API key: make api-key NAME=xoma ROLE=service|admin (the key is the last line)
	@test -n "$(NAME)" || { echo "usage: make api-key NAME=<name> ROLE=<service|admin>" >&2; exit 2; }
	@$(PY) -m ops api-key --name "$(NAME)" --role "$(or $(ROLE),service)"

GATEWAY_PORT ?= 8080
docs-screenshot: ## screenshot /v1/docs of the running stack (make run) into docs-screenshot.png
	@chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir="$$(mktemp -d)" --hide-scrollbars \
		--window-size=1280,6000 --virtual-time-budget=15000 --screenshot=docs-screenshot.png \
		"http://127.0.0.1:$(GATEWAY_PORT)/v1/docs#/meetings/createMeeting" 2>/dev/null && echo "docs-screenshot.png"

clean: ## remove the virtualenv and build output (keeps .local/ data)
	rm -rf $(VENV) build dist *.egg-info

# Ops: deployment packages, the API Gateway spec, static checks of the infrastructure.
.PHONY: package gateway-spec lint

package: ## build one reproducible zip per function into build/, named by content hash (for terraform apply)
	@$(or $(PYTHON),python3) -m ops.package

gateway-spec: install ## regenerate infra/terraform/generated/ (the API Gateway spec) from the route table
	@$(PY) -m ops.gateway_spec --write

lint: install ## ruff and mypy over the code, terraform fmt, checkov over infra/terraform, the gateway spec check
	@$(VENV)/bin/ruff check shared functions ops && echo "ruff: ok"
	@$(VENV)/bin/mypy && echo "mypy: ok"
	@if command -v terraform >/dev/null 2>&1; then \
		TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff infra/terraform && echo "terraform fmt: ok"; \
	else \
		echo "terraform not on PATH: skipping terraform fmt"; \
	fi
	@bash dev/install_tool.sh checkov
	@.local/venvs/checkov/bin/checkov --config-file infra/terraform/.checkov.yaml
	@$(PY) -m ops.gateway_spec --check

# Performance: every figure as a ratio against baselines started in the same run (a few minutes; not in `make test`).
.PHONY: bench

bench: install ## warm reads/list/creates, cold starts, imports, memory, sweeps vs baselines (docs/benchmarks.md)
	@$(PY) -m dev.bench

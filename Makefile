# Legation developer entry points. Everything runs from a local virtualenv (.venv) that
# `make install` creates from pinned versions (constraints.txt).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
BIN := $(VENV)/bin
PACKAGES := libs/legation-contracts libs/legation-core libs/legation-devstack \
	services/listener services/publisher services/engager services/evaluator
STAMP := $(VENV)/.installed-stamp
INPUTS := constraints.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) \
	$(shell find protos topics -type f) tools/gen_contracts.py

.PHONY: help install contracts run run-once stop test lint fmt typecheck check bench clean

help:
	@echo "make run        start the whole local stack and a demo campaign (Ctrl-C stops)"
	@echo "make run-once   same, but stop after printing the demo scorecard"
	@echo "make stop       stop a stack started by make run in another terminal"
	@echo "make test       install what the tests need, lint, type-check and run every test"
	@echo "make bench      measure the shared runtime's throughput"

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(STAMP)

$(STAMP): $(PY) $(INPUTS)
	$(PIP) install -c constraints.txt grpcio-tools mypy-protobuf
	$(PY) tools/gen_contracts.py
	$(PIP) install -c constraints.txt $(addprefix -e ,$(PACKAGES)) \
		ruff mypy pytest pytest-timeout types-protobuf types-PyYAML grpc-stubs
	touch $(STAMP)

contracts: $(PY)
	$(PY) tools/gen_contracts.py

run: install
	$(PY) -m legation_devstack run

run-once: install
	$(PY) -m legation_devstack run --once

stop: install
	$(PY) -m legation_devstack stop

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy libs/legation-core/src libs/legation-devstack/src \
		services/listener/src services/publisher/src services/engager/src services/evaluator/src tests

check: lint typecheck

test: check
	$(BIN)/pytest

bench: install
	$(PY) -m legation_devstack bench

clean:
	rm -rf $(VENV) libs/legation-contracts/src .pytest_cache .mypy_cache .ruff_cache .legation

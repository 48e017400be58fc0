# Conduit developer commands. Each target does its own set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint fmt clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev,lab]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m otconduit.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/mixed_bench.py --per-part
	$(BIN)/python -m otconduit.gateway.historian.bench
	$(BIN)/python bench/gateway_bench.py
	$(BIN)/python bench/maintenance_bench.py --folders valve1,anomaly-free
	$(BIN)/python bench/hub_bench.py

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Conduit developer commands. Each target does its own set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint fmt clean pyc

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev,lab]'
	touch $(STAMP)

# Byte-compile the sources (only what changed): with PYTHONDONTWRITEBYTECODE set, as on
# some machines, every `conduit` run would otherwise compile ~80 modules again (0.2 s).
pyc: $(STAMP)
	@$(BIN)/python -m compileall -q src >/dev/null

demo: pyc
	$(BIN)/python -m otconduit.demo

test: pyc
	$(BIN)/python -m pytest -q

bench: pyc
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

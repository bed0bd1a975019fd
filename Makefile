# The index of commands. Everything runs from the virtual environment in .venv/.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/datasets/nih-malaria-cells
export PYTHONPATH := $(CURDIR)

.PHONY: install test lint format train evaluate bench-classifier clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[training,dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Trains, calibrates and writes worker/model/ (at most 45 minutes on 2 cores).
train: install
	$(PY) -m worker.training train --data $(DATA)

evaluate: install
	$(PY) -m worker.training evaluate --data $(DATA) --out out/evaluation $(if $(SPLIT),--split $(SPLIT))

bench-classifier: install
	$(PY) -m worker.bench_classifier --data $(DATA)

clean:
	rm -rf out .pytest_cache .ruff_cache

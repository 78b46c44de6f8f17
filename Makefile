# Everything installs from scratch into .venv; `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[deep,dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/python -m segscope.demo demo_out

bench: $(STAMP)
	$(BIN)/python benchmarks/classical.py
	$(BIN)/python benchmarks/metrics.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache

# Everything installs from scratch into .venv; `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MINUTES ?= 30

.PHONY: install test lint typecheck unit demo serve fuzz zoo bench bench-deep bench-scale clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[deep,scale,serve,dev]"
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

# The web app on FOLDER's images (default: scikit-image's samples), on http://127.0.0.1:$(PORT)/.
FOLDER ?= serve_samples
PORT ?= 8000
serve: $(STAMP)
	test -d $(FOLDER) || $(BIN)/python -c "from segscope.demo import write_samples; write_samples('$(FOLDER)')"
	$(BIN)/segscope serve $(FOLDER) --port $(PORT)

# Every reader fed mutated files (hypothesis): FUZZ_EXAMPLES per reader, and FUZZ_EXAMPLES / 10
# parameter draws per method; a bounded run.
FUZZ_EXAMPLES ?= 3000
fuzz: $(STAMP)
	SEGSCOPE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
		--timeout 1800 tests/robustness/test_fuzz_readers.py tests/robustness/test_method_parameters.py

# Retrain every zoo model from its card's recipe (fixed epochs; resumable: run it again after an
# interruption or a time box) and rewrite the cards' figures. ZOO= names some models only;
# ZOO_MINUTES= time-boxes each model for this call. Needs ../shared/data.
ZOO ?=
ZOO_MINUTES ?=
zoo: $(STAMP)
	$(BIN)/python -m segscope.zoo.build $(ZOO) $(if $(ZOO_MINUTES),--minutes $(ZOO_MINUTES))

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[deep,scale,serve,dev,bench]"
	touch $(BENCH_STAMP)

# The nuclei benchmark's Cellpose peer, in its own environment (its NumPy pin conflicts with ours);
# the versions are pinned in pyproject.toml under [tool.segscope.peer-environments].
CELLPOSE_VENV := .venv-cellpose
$(CELLPOSE_VENV)/.installed: pyproject.toml
	test -x $(CELLPOSE_VENV)/bin/python || $(PYTHON) -m venv $(CELLPOSE_VENV)
	$(CELLPOSE_VENV)/bin/python -m pip install --quiet $$($(PYTHON) -c "import tomllib; \
		print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['tool']['segscope']['peer-environments']['cellpose']))")
	touch $@

# Quick benchmarks: classical methods and metrics against their peers (a few minutes).
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/classical.py
	$(BIN)/python benchmarks/metrics.py

# Deep benchmarks: every model and the peer trained for $(MINUTES) minutes each (hours on a CPU).
bench-deep: $(BENCH_STAMP) $(CELLPOSE_VENV)/.installed
	cd benchmarks && ../$(BIN)/python camvid.py --minutes $(MINUTES) --out ../bench_out/camvid
	cd benchmarks && ../$(BIN)/python isbi.py --minutes $(MINUTES) --out ../bench_out/isbi
	cd benchmarks && ../$(BIN)/python dsb2018.py --minutes $(MINUTES) --peers stardist_tf,cellpose \
		--out ../bench_out/dsb2018
	$(BIN)/python benchmarks/bsds_tuning.py

# Scale benchmark: a 20000 x 20000 image tiled on local Dask clusters of 1 and 2 workers (about 70 min).
bench-scale: $(BENCH_STAMP)
	$(BIN)/python benchmarks/scale.py --out bench_out/scale

clean:
	rm -rf $(VENV) $(CELLPOSE_VENV) demo_out serve_samples bench_out .pytest_cache .mypy_cache .ruff_cache

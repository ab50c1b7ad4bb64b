# Two commands set everything up on a fresh machine with Python >= 3.11:
#   make demo   - local virtual environment, install, run the main job offline -> reports/
#   make test   - same set-up, then lint and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.finar-installed
# The CPU build of torch; an unpinned torch can pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,tune]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/finar report --data sp500 --out reports/sp500.html

lint: $(STAMP)
	$(BIN)/ruff check finar tests benchmarks

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

# Two commands set everything up on a fresh machine with Python >= 3.11:
#   make demo   - local virtual environment, install, run the main job offline -> reports/ (rebuilt each time)
#   make test   - same set-up, then lint, the documentation site (strict) and the whole test suite
#   make docs   - the documentation site, built strictly into build/site (open build/site/index.html)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.finar-installed
# The CPU build of torch; an unpinned torch can pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
SITE := build/site

.PHONY: install demo test lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,tune,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/finar report --data sp500 --out reports/sp500.html --force

lint: $(STAMP)
	$(BIN)/ruff check finar tests benchmarks

# a broken link, a stale docstring parameter or a benchmark result without a table fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(SITE)

# the tests read the site just built (tests/docs, tests/report/test_browser.py) instead of building it again
test: lint docs
	FINAR_DOCS_SITE=$(SITE) $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

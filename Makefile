# Two commands do all the set-up on a fresh clone:
#   make demo   create .venv if missing, install paperlab, get any missing data
#               (`paperlab data fetch`; offline it stops with what to run), run
#               `paperlab reproduce --quick`
#   make test   same set-up with the dev extras, then ruff, the API site (warnings as
#               errors) and the test suite
#   make docs   the API reference site alone, into site/ (open site/index.html)
# Set-up is idempotent: pip runs again only when pyproject.toml or setup.py changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra pip arguments, e.g. a PyTorch index for a CPU or CUDA build (see README).
PIP_ARGS ?=
OUT ?= results

STAMP := $(VENV)/.paperlab-installed
DEPS := pyproject.toml $(wildcard setup.py)

.PHONY: demo test install lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python $(DEPS)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	@$(BIN)/paperlab data fetch
	$(BIN)/paperlab reproduce --quick --out $(OUT)

lint: install
	$(BIN)/ruff check paperlab tests docs

# A broken cross-reference or a docstring that disagrees with its signature fails the build.
docs: install
	$(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) build site *.egg-info

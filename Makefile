# Every target makes .venv when it is missing (python3 -m venv + pip install -e ".[dev]").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOK_SOURCES := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
NOTEBOOKS        := $(NOTEBOOK_SOURCES:.py=.ipynb)
PIP_QUIET ?= -q

.PHONY: test tutorial lab sync student bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/python -m pip install $(PIP_QUIET) -e ".[dev]"
	touch $(STAMP)

## make test: lint, unit tests, the notebook sync gate and every notebook under nbmake, in smoke mode
test: $(STAMP)
	$(BIN)/ruff check unet_tutorial tests data_scripts benchmarks
	$(BIN)/python -m unet_tutorial.notebook_tools check $(NOTEBOOK_SOURCES)
	UNET_TUTORIAL_SMOKE=1 $(BIN)/python -m pytest --nbmake --nbmake-timeout=300 --durations=12 tests $(NOTEBOOKS)

## make tutorial: the five notebooks in order, full mode, saved with outputs in build/notebooks/
tutorial: $(STAMP)
	$(BIN)/python -m unet_tutorial.notebook_tools run $(NOTEBOOKS) --out build/notebooks

## make lab: JupyterLab on notebooks/
lab: $(STAMP)
	test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install $(PIP_QUIET) -e ".[dev,lab]"
	$(BIN)/jupyter lab notebooks

## make sync: regenerate each .ipynb (no outputs) and its student copy from its jupytext .py source
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb $(NOTEBOOK_SOURCES)
	$(BIN)/python -m unet_tutorial.notebook_tools student $(NOTEBOOK_SOURCES)

## make student: notebooks/exercises/NN_slug.ipynb, each solution cell a stub (committed; make test checks them)
student: $(STAMP)
	$(BIN)/python -m unet_tutorial.notebook_tools student $(NOTEBOOK_SOURCES)

clean:
	rm -rf build .pytest_cache

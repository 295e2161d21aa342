# Every target makes .venv when it is missing (python3 -m venv + pip install -e ".[dev]"). pip byte-compiles what it
# installs on one core; compileall does it on all of them (-j 0), about 20 s sooner on 2 cores. Compiled it must be:
# with PYTHONDONTWRITEBYTECODE set (as on our machines) nothing is cached later, and every test process would
# compile torch again. A file written for a newer Python (torch has one for 3.12) fails to compile, as under pip:
# that is not ours to fix, hence "|| true".
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOK_SOURCES := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
NOTEBOOKS        := $(NOTEBOOK_SOURCES:.py=.ipynb)
PIP_QUIET ?= -q

.PHONY: lint format unit test test-colab test-min core tutorial results site site-check badges lab sync student bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/python -m pip install $(PIP_QUIET) --no-compile -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
		> /dev/null || true
	touch $(STAMP)

FORMATTED := unet_tutorial tools tests data_scripts benchmarks hubconf.py
LINTED := $(FORMATTED) $(NOTEBOOK_SOURCES)

## make lint: ruff's checks (line length enforced) over the package, the tools, the tests and the notebooks' sources,
## and that the Python code is as `make format` leaves it
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(FORMATTED)

## make format: ruff format over the Python code (the notebooks' sources keep their hand layout)
format: $(STAMP)
	$(BIN)/ruff format $(FORMATTED)

## make unit: the unit tests only, without the slow ones and the notebooks (about a minute on an idle 2-core machine)
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests

## make test: lint, all unit tests (slow ones too), the notebook sync gate, the gate against run-dependent numbers
## typed in prose, and every notebook under nbmake, in smoke mode. Two pytest workers (TEST_WORKERS), one thread
## each, that steal each other's queued tests (worksteal: no worker idles while the other has a queue), the longest
## files first (LONGEST_FIRST; pytest collects a path named twice once, so they are also in `tests` and NOTEBOOKS).
## On 2 idle cores pytest takes about 3.5 minutes and `make test` on a fresh clone about 5
TEST_WORKERS ?= 2
LONGEST_FIRST := notebooks/04_densenet121_transfer.ipynb tests/test_notebook_imagenet.py tests/test_notebooks_real_data.py \
	tests/test_grade.py tests/test_cli.py
test: lint
	$(BIN)/python -m tools.notebooks check $(NOTEBOOK_SOURCES)
	$(BIN)/python -m tools.notebooks prose $(NOTEBOOK_SOURCES) $(wildcard notebooks/exercises/[0-9][0-9]_*.ipynb)
	OMP_NUM_THREADS=1 UNET_TUTORIAL_SMOKE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --runslow \
		--nbmake --nbmake-timeout=300 --durations=12 $(LONGEST_FIRST) $(NOTEBOOKS) tests

# seconds per notebook in test-colab and test-min; raise it on a busy machine
NBMAKE_TIMEOUT ?= 300
SMOKE_RUN = UNET_TUTORIAL_SMOKE=1 $(1)/bin/python -m pytest --nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) tests $(NOTEBOOKS)

## make test-colab: Python 3.13 with exactly Colab's versions (.ci/colab-versions.txt) in .venv-colab; the package
## installed through a notebook's own setup cell from a local copy of this checkout, without the release tag (main)
## and with it, which must keep torch, torchvision and ipywidgets; then the tests
COLAB_PYTHON ?= python3.13
COLAB_VENV   := .venv-colab
$(COLAB_VENV)/.installed: .ci/colab-versions.txt
	rm -rf $(COLAB_VENV)
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install $(PIP_QUIET) -r .ci/colab-versions.txt
	touch $@

test-colab: $(COLAB_VENV)/.installed
	$(COLAB_VENV)/bin/python .ci/colab_setup.py $(firstword $(NOTEBOOK_SOURCES))
	$(COLAB_VENV)/bin/python -m pip install $(PIP_QUIET) -c .ci/colab-versions.txt "unet_tutorial[dev] @ file://$(CURDIR)"
	$(call SMOKE_RUN,$(COLAB_VENV))

## make test-min: Python 3.10 with every lower bound of pyproject.toml's dependencies installed exactly (.venv-min)
MIN_PYTHON ?= python3.10
MIN_VENV   := .venv-min
$(MIN_VENV)/.installed: pyproject.toml
	rm -rf $(MIN_VENV)
	$(MIN_PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	sed -n '/^dependencies = \[/,/^\]/p' pyproject.toml | grep -o '"[^"]*"' | tr -d '"' | sed 's/>=/==/' \
		> $(MIN_VENV)/lower-bounds.txt
	cat $(MIN_VENV)/lower-bounds.txt
	$(MIN_VENV)/bin/python -m pip install $(PIP_QUIET) -c $(MIN_VENV)/lower-bounds.txt -e ".[dev]"
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pip list | grep -iE '^(torch|torchvision|albumentations|numpy|matplotlib|pillow|ipywidgets|tqdm) '
	$(call SMOKE_RUN,$(MIN_VENV))

## make core: each notebook's core path alone (its optional parts left out, tools/core_path.py) in build/core/,
## run in smoke mode: what a 90-minute lab runs must not need an optional section
core: $(STAMP)
	$(BIN)/python -m tools.core_path $(NOTEBOOK_SOURCES) --out build/core
	UNET_TUTORIAL_SMOKE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) \
		build/core/*_core.ipynb

## make tutorial: the five notebooks in order, full mode, saved with outputs in build/notebooks/
tutorial: $(STAMP)
	$(BIN)/python -m tools.notebooks run $(NOTEBOOKS) --out build/notebooks

## make results: README.md's results table (between its results:start/end markers) rewritten from what make tutorial
## wrote in build/notebooks (metrics/*.json, run.json: runtimes, machine, date, mode); a smoke run is refused
results: $(STAMP)
	$(BIN)/python -m tools.results build/notebooks --readme README.md

## make site: the executed notebooks in build/notebooks (make tutorial, or a smoke run) as a website in build/site:
## a landing page for learners and teachers, a page per notebook, the README as "Developers" (mkdocs +
## mkdocs-jupyter, in .venv-site); MathJax is fetched once from npm (npm pack, pinned) and shipped with the site
SITE_VENV := .venv-site
MATHJAX   := 3.2.2
MATHJAX_TGZ := build/vendor/mathjax-$(MATHJAX).tgz
$(SITE_VENV)/.installed: .ci/site-requirements.txt
	rm -rf $(SITE_VENV)
	$(PYTHON) -m venv $(SITE_VENV)
	$(SITE_VENV)/bin/python -m pip install $(PIP_QUIET) -r .ci/site-requirements.txt
	touch $@

$(MATHJAX_TGZ):
	mkdir -p $(@D)
	cd $(@D) && npm pack --silent mathjax@$(MATHJAX) >/dev/null
	test -s $@

site: $(SITE_VENV)/.installed $(MATHJAX_TGZ)
	$(SITE_VENV)/bin/python .ci/site_pages.py build/notebooks build/site-src --mathjax $(MATHJAX_TGZ)
	NO_MKDOCS_2_WARNING=1 $(SITE_VENV)/bin/mkdocs build -q -f .ci/mkdocs.yml

## make site-check: build/site checked as a reader would see it (needs chromium on the PATH, or CHROMIUM=...):
## links and #anchors, the table of contents, no local paths in outputs, images, math typeset, code cells not cut
## off at 1280 px (at most 10 % may overflow). Screenshots at 1280 px of every page, full length:
##   make site-check SITE_SHOTS=build/site-shots
SITE_SHOTS ?=
site-check: site
	test -x $(SITE_VENV)/bin/playwright || $(SITE_VENV)/bin/python -m pip install $(PIP_QUIET) "playwright>=1.40" "pillow>=9.4"
	$(SITE_VENV)/bin/python .ci/check_site.py build/site $(if $(SITE_SHOTS),--shots $(SITE_SHOTS))

## make badges: write utils.REPO_URL and the package's version into every notebook's badges and setup cell
badges: $(STAMP)
	$(BIN)/python -m tools.release $(NOTEBOOK_SOURCES)
	$(BIN)/jupytext --update --to ipynb $(NOTEBOOK_SOURCES)
	$(BIN)/python -m tools.notebooks student $(NOTEBOOK_SOURCES)

## make lab: JupyterLab on notebooks/
lab: $(STAMP)
	test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install $(PIP_QUIET) -e ".[dev,lab]"
	$(BIN)/jupyter lab notebooks

## make sync: regenerate each .ipynb (no outputs) and its student copy from its jupytext .py source
sync: $(STAMP)
	$(BIN)/jupytext --to ipynb $(NOTEBOOK_SOURCES)
	$(BIN)/python -m tools.notebooks student $(NOTEBOOK_SOURCES)

## make student: notebooks/exercises/NN_slug.ipynb, each solution cell a stub (committed; make test checks them)
student: $(STAMP)
	$(BIN)/python -m tools.notebooks student $(NOTEBOOK_SOURCES)

## make gpu-check: on CUDA, the train and loader benchmarks and one epoch of each notebook's GPU recipe
## (<= 9 min), as one table in build/gpu_check.md; without CUDA, a dry run that proves each step starts
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --out build

clean:
	rm -rf build .pytest_cache

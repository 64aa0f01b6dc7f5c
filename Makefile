# maml-lecture: one virtual environment (.venv), three everyday commands.
#   make lab        start JupyterLab on notebooks/ (the Korean edition is its folder ko/)
#   make test       unit tests, then every notebook under strict nbval, then a time table
#   make test-install  a real `pip install -e .` into a fresh venv with its own numpy keeps it
#   make test-perturbed  strict nbval again with every float weight nudged by 2-4 float32 ulps
#   make notebooks  re-execute the notebooks in place (refreshes their stored outputs), then make korean
#   make korean     rebuild the Korean edition, notebooks/ko/, from the English notebooks and translations/ko/
# For a class and for CI:
#   make test-browser  every notebook in JupyterLab in headless Chromium, widgets moved; then Voila
#   make present       the notebooks as apps (Voila) for a class; the Korean ones in ko/
#   make slides        JupyterLab with RISE: open a notebook, press Alt+R (or the toolbar's slides button)
#   make html          static HTML of the stored outputs in build/html/ (Korean: build/html/ko/), one index for both
#   make results       evaluate the committed checkpoints -> results/RESULTS.md (no training)
#   make reproduce     retrain every model from scratch (GPU when present), then make results
#   make compat TORCH=2.15.0  a fresh .venv-compat-2.15.0 with that torch and the newest libraries
#                      in pyproject's ranges: unit tests, then every notebook (asserts, not outputs)
# Each creates .venv and installs the project into it first, when needed, with the exact versions
# of constraints.txt (pyproject.toml gives ranges; the stored outputs were made with the pins).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -c $(CONSTRAINTS)

# Every notebook except templates (names starting with "_"); read at run time,
# so notebooks added later are picked up without editing this file. The Korean edition in
# notebooks/ko/ is left out on purpose: its code cells and stored outputs are the English ones,
# byte for byte (tests/test_korean_sync.py proves it), so nbval need not run them twice.
NOTEBOOKS = $(sort $(filter-out notebooks/_%,$(wildcard notebooks/*.ipynb)))
# `make notebooks NB=notebooks/00_setup.ipynb` refreshes a single notebook.
NB ?= $(NOTEBOOKS)
CELL_TIMEOUT ?= 600

# Stored outputs are produced and compared on the CPU, where runs are deterministic, with the
# pinned versions: 00_setup warns about other versions, and fails on them when STRICT_PINS is set.
TEST_ENV := MAML_LECTURE_DEVICE=cpu MAML_LECTURE_STRICT_PINS=1
NBVAL_ARGS := --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg \
              --nbval-cell-timeout $(CELL_TIMEOUT)
# JupyterLab refuses to run as root unless told to (containers, Colab-like machines).
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

# The browser extra (Playwright, Voila) and the slides extra (RISE) are installed only by the
# targets that need them; the browser test presents one notebook as slides.
BROWSER_STAMP := $(VENV)/.installed-browser
SLIDES_STAMP := $(VENV)/.installed-slides
# The system Chromium; Playwright never downloads a browser. `make test-browser CHROMIUM=...`
# points at another Chromium or Chrome; BROWSER_ARGS passes options (see scripts/browser_test.py -h).
CHROMIUM ?= /usr/bin/chromium
BROWSER_ARGS ?=
# `make present PRESENT_ARGS="--port=8866 --no-browser"`; `make reproduce MODELS="sine_maml_k10"`;
# `make reproduce JOBS=2` trains two models at once (one per core on a 2-core laptop).
PRESENT_ARGS ?=
# `make compat TORCH=2.15.0 COMPAT_ARGS="--notebooks 01 05"` (see scripts/compat.py -h).
TORCH ?=
COMPAT_ARGS ?=
MODELS ?=
JOBS ?= 1
RESULTS_ARGS ?=

.PHONY: lab test test-install test-perturbed compat notebooks korean venv test-browser chromium present slides html results reproduce curves

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest tests $(NOTEBOOKS) $(NBVAL_ARGS)

# pyproject.toml gives ranges: installing the package keeps the versions an environment has.
test-install: $(STAMP)
	MAML_LECTURE_INSTALL_TEST=1 $(BIN)/python -m pytest tests/test_install.py

# Other CPUs round the last bits differently; the stored outputs must not depend on them
# (CONTRIBUTING.md, "An output design that holds across machines").
test-perturbed: $(STAMP)
	$(TEST_ENV) $(BIN)/python scripts/perturbed_nbval.py $(NOTEBOOKS) $(NBVAL_ARGS)

# Another torch: a fresh .venv-compat-$(TORCH), the newest libraries in pyproject's ranges, the unit
# tests and every notebook under --nbval-lax (asserts hold; outputs are not compared). Results go to
# build/compat/$(TORCH).md. Not in .ci/run: every torch but 2.13.0 pulls about 3 GB of CUDA.
compat:
	@test -n "$(TORCH)" || { echo "error: name a torch release, e.g. make compat TORCH=2.15.0" \
	    "(docs/compatibility.md lists the tested ones)"; exit 1; }
	$(PYTHON) scripts/compat.py --torch $(TORCH) $(COMPAT_ARGS)

notebooks: $(STAMP)
	$(TEST_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=$(CELL_TIMEOUT) \
	    --ExecutePreprocessor.record_timing=False $(NB)
	$(MAKE) korean

# The Korean notebooks: the English code cells and outputs, the markdown from translations/ko/NAME.yaml.
# Refused, with each cell named, while a translation is missing or older than its English cell.
korean: $(STAMP)
	$(BIN)/python scripts/build_korean.py

venv: $(STAMP)

test-browser: $(BROWSER_STAMP) chromium
	CHROMIUM=$(CHROMIUM) $(TEST_ENV) $(BIN)/python scripts/browser_test.py $(BROWSER_ARGS)

# Debian's Chromium and a Korean font (the browser test runs a notebook of the Korean edition, whose
# Hangul would show as boxes without one), each installed only when missing, in one apt-get (as root:
# CI and containers). `fc-list :lang=ko` (fontconfig, which Chromium uses) tells whether a font is there.
KOREAN_FONT := fonts-nanum
chromium:
	@missing=""; \
	if [ ! -x "$(CHROMIUM)" ]; then \
	    if [ "$(CHROMIUM)" = /usr/bin/chromium ]; then missing="chromium"; else \
	        echo "error: no Chromium at $(CHROMIUM). Install it, or run: make test-browser CHROMIUM=/path/to/chromium"; \
	        exit 1; \
	    fi; \
	fi; \
	if ! fc-list :lang=ko 2>/dev/null | grep -q .; then missing="$$missing $(KOREAN_FONT) fontconfig"; fi; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "Installing Debian's$$missing"; \
	        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	    else \
	        echo "error: missing:$$missing (Chromium runs the test; a Korean font shows the Korean notebook's" \
	             "Hangul, not boxes). Install them: sudo apt-get install$$missing (Debian/Ubuntu)"; exit 1; \
	    fi; \
	fi

present: $(BROWSER_STAMP)
	$(BIN)/voila notebooks $(PRESENT_ARGS)

# Slides offline: RISE bundles reveal.js; each notebook's metadata picks a theme without CDN fonts.
slides: $(SLIDES_STAMP)
	@echo "Open a notebook, then press Alt+R (or the toolbar button 'Render as Reveal Slideshow')."
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

html: $(STAMP)
	$(BIN)/python scripts/build_html.py

results: $(STAMP)
	$(BIN)/python scripts/results.py $(RESULTS_ARGS)

# Notebook 05's learning curves: three character models trained again from scratch, scored every
# 250 meta-iterations (about 100 minutes on one CPU core; the checkpoints are not touched).
CURVES ?= chars5_maml chars5_fomaml_a0.1 chars5_reptile
curves: $(STAMP)
	$(BIN)/python scripts/learning_curves.py $(CURVES)

reproduce: $(STAMP)
	$(BIN)/python -m lecture_utils.retrain $(MODELS) --jobs $(JOBS) --report results/REPRODUCE.md
	$(MAKE) results

$(BROWSER_STAMP): $(STAMP)
	$(PIP_INSTALL) -e '.[test,browser,slides]'
	@touch $@ $(SLIDES_STAMP)

$(SLIDES_STAMP): $(STAMP)
	$(PIP_INSTALL) -e '.[test,slides]'
	@touch $@

# The install is a file target: it reruns only when pyproject.toml or constraints.txt changes.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	    echo "error: '$(PYTHON)' not found. Install Python 3.11+ or run: make PYTHON=/path/to/python3.11 ..."; exit 1; }
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else \
	    f"error: Python 3.11 or newer is needed, but $(PYTHON) is {v.major}.{v.minor}. " \
	    "Run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); } || { \
	    echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt install python3.11-venv)"; exit 1; }
	$(PIP_INSTALL) -e '.[test]'
	@touch $@

# Machine Learning in Particle Physics: the two commands are `make book` and `make test`.
# `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlpp-installed
HUB_PROXY := hub/node_modules/.bin/configurable-http-proxy
export MLPP_TIER ?= full
# Quiet TensorFlow and keep every library on the CPU with two threads (the course's reference machine).
export TF_CPP_MIN_LOG_LEVEL := 3
export CUDA_VISIBLE_DEVICES :=
export PYTHONHASHSEED := 0

.PHONY: help venv data book system browser test lab hub release grade clean-book clean-data

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  MLPP_TIER=fast|full (default full) picks dataset sizes and training lengths."

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mlpp)" >/dev/null
	$(BIN)/mlpp hls warmup  # da4ml compiles its numba kernels once (about 95 s), not inside Lecture 11
	touch $@

venv: $(STAMP)  ## create .venv (Python 3.11) with the pinned course stack

data: $(STAMP)  ## generate the datasets the lectures need for MLPP_TIER
	$(BIN)/mlpp data generate --needed --tier $(MLPP_TIER)

# Lectures whose code cells did not change since they last ran in this tier come from the
# execution cache, _build/.jupyter_cache/$(MLPP_TIER); `make clean-book` forces re-execution.
book: data  ## set up, generate data, execute the lectures (cached per tier) and build the site into _build/html
	$(BIN)/jupyter-book build -W -n --keep-going .
	@# numbers a lecture's text quotes from its own run must be glued or printed, not typed
	$(BIN)/python -m mlpp.quoted_numbers lectures _build/jupyter_execute/lectures
	@echo; echo "The course site is built: open file://$(CURDIR)/_build/html/index.html"

system:  ## install the Debian packages the tests need if missing: chromium (site and hub tests), bubblewrap (grading sandbox); needs root
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "error: missing Debian packages:$$missing; run 'sudo apt-get install$$missing' (the tests need them)"; exit 1; fi; fi

browser: system  ## (old name of `make system`)

test: $(STAMP) system $(HUB_PROXY)  ## the full test suite, in the fast tier
	MLPP_TIER=fast $(BIN)/mlpp data generate --needed --tier fast --quiet
	# Each notebook runs once: the lectures in tests/test_book.py's site build (a raising cell fails it),
	# the solutions in tests/test_grading.py through nbgrader (full marks, no cell raising).
	MLPP_TIER=fast $(BIN)/python -m pytest -p no:cacheprovider --durations=20 tests

lab: $(STAMP)  ## JupyterLab on the course
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR)

# The course's JupyterHub (hub/README.md): its proxy comes from npm into hub/node_modules.
$(HUB_PROXY):
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20+ with npm (apt-get install nodejs npm)"; exit 1; }
	npm install --prefix hub --no-save --no-audit --no-fund --loglevel=error configurable-http-proxy@5.3.0

hub: $(STAMP) $(HUB_PROXY)  ## the course's JupyterHub on http://127.0.0.1:8000 (as root; HUB_ARGS="--help" lists options)
	$(BIN)/python hub/start.py $(HUB_ARGS)

release: $(STAMP)  ## regenerate exercises/ from solutions/ with nbgrader
	$(BIN)/mlpp release

grade: $(STAMP)  ## grade a submission (in the fast tier): make grade NB=path.ipynb EX=01_nn_recap
	@test -n "$(NB)" -a -n "$(EX)" || { echo "usage: make grade NB=submission.ipynb EX=exercise_id"; exit 2; }
	MLPP_TIER=fast $(BIN)/mlpp grade $(NB) --exercise $(EX)

clean-book:  ## remove the built site and its execution cache (the next build runs every lecture)
	rm -rf _build

clean-data:  ## remove the generated-data cache
	rm -rf datasets/cache

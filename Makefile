# The two-command quick start: `make drill`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SANDBOX ?= outputs/sandbox
INSTALLED := $(VENV)/.installed
# JupyterLab refuses to run as root unless told; containers often are root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help drill test test-browser soak lint lab notebooks-clean bench clean

help:
	@echo "make drill  create .venv, drill every runbook scenario and a lost host on sandboxes, write outputs/ and outputs/index.html"
	@echo "make test   lint and run the whole test suite"
	@echo "make test-browser  JupyterLab walk-through and records page in Chromium (needs: apt-get install chromium)"
	@echo "make soak   the reliability suite with its loops run much longer (--long)"
	@echo "make lab    JupyterLab on notebooks/ with the sandbox as the site"
	@echo "make notebooks-clean  strip outputs and editor metadata from notebooks/ before committing (docs/notebooks.md)"
	@echo "make bench  speed benchmarks as one table (REPLICA=1 adds the replica benchmark; benchmarks/README.md)"
	@echo "make clean  remove .venv and outputs/"

# One virtualenv for everything; re-installed when pyproject.toml changes.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The main job: every runbook scenario drilled on a fresh sandbox, then the host lost with its local
# backups and recovered into a new host from the sandbox's replica (--scenario all runs full/host_lost
# last); records in outputs/.
drill: $(INSTALLED)
	$(BIN)/recovery drill run --scenario all --outputs outputs --jobs 2

# notebooks/: ruff reads the code cells of the .ipynb files.
lint: $(INSTALLED)
	$(BIN)/ruff check recovery_lib tests benchmarks tools notebooks
	$(BIN)/ruff format --check recovery_lib tests benchmarks tools notebooks

test: lint
	$(BIN)/python -m pytest

$(VENV)/.browser-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,browser]'
	touch $@

# End-to-end in a real browser: Playwright drives Debian's Chromium (Playwright's own download is not used).
test-browser: $(VENV)/.browser-installed
	@command -v $${CHROMIUM:-chromium} >/dev/null || { echo "make test-browser needs Chromium: sudo apt-get install chromium (or set CHROMIUM=/path/to/chromium)"; exit 2; }
	$(BIN)/python -m pytest tests/browser -m browser

# The reliability suite's crash, failure-point and hypothesis loops, many times longer than in `make test`.
soak: $(INSTALLED)
	$(BIN)/python -m pytest tests/reliability --long

$(VENV)/.lab-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,lab]'
	touch $@

lab: $(VENV)/.lab-installed
	@test -f $(SANDBOX)/.recovery-sandbox.json || $(BIN)/recovery sandbox create $(SANDBOX)
	RECOVERY_SITE=$(abspath $(SANDBOX)) $(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

# After editing in JupyterLab: no outputs, execution counts or editor metadata; cells and tags kept.
notebooks-clean: $(INSTALLED)
	$(BIN)/python tools/clean_notebooks.py

# One table of every benchmark (benchmarks/README.md); REPLICA=1 adds bench_replica.py (5-10 minutes more).
bench: $(INSTALLED)
	$(BIN)/python benchmarks/bench.py --rounds 3 $(if $(REPLICA),--replica)

clean:
	find outputs -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf $(VENV)

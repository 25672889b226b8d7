# The two commands a user needs: `make run` and `make test`. Everything else is for maintainers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# The dashboard listens on this machine only; `make run ADDRESS=0.0.0.0` serves every network interface.
ADDRESS ?= 127.0.0.1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export STREAMLIT_BROWSER_GATHER_USAGE_STATS := false

.PHONY: run test test-fast checkpoints analysis screenshots bench browser-deps slurm-deps clean-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when a requirements file changes. mmaux itself is installed editable (the `mmaux`
# command, importable from any folder); no build isolation, so it needs no network.
$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt "setuptools>=70.1"
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

## Open the dashboard on the shipped checkpoints and the built-in benchmark (http://127.0.0.1:$(PORT)).
run: $(VENV)/.runtime
	$(BIN)/streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

## Install everything the tests need (Python tools, headless Chromium, a one-node Slurm) and run the whole suite.
test: $(VENV)/.test browser-deps slurm-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

## The suite without the slow and browser tests.
test-fast: $(VENV)/.test
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# Debian's Chromium and its driver for the end-to-end browser test (needs root or sudo).
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "browser-deps: cannot install chromium (not root, no sudo); the browser test will skip"; fi

# Debian's Slurm and munge, for the test that runs a sweep on a one-node cluster it starts itself
# (localhost only); without root the test skips and says why.
slurm-deps:
	@if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
		&& command -v munged >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		slurmctld slurmd slurm-client munge >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }; \
	else echo "slurm-deps: cannot install Slurm (not root); the one-node Slurm test will skip"; fi

## Rebuild every shipped checkpoint from scratch on CPU (resumable: finished runs are skipped, failed
## ones run again). Each sweep fills the data and frozen-feature caches once, then runs one job per
## run through submitit as local processes, two at a time with one thread each (`mmaux sweep
## --status` says where they stand). Seeds 0-4 of every group and variant keep their weights and UMAP
## maps (--layouts: the pages that run a model use them); seeds 5-19 are predictions only
## (--predictions-only: outputs and metrics, no weights). Twenty seeds per arm: a paired t over
## seeds then sees a 3-point effect (five saw about 6). `SEEDS=0,1,2 MORE_SEEDS=` builds a smaller
## set. The clock time of the whole rebuild goes to checkpoints/rebuild.json.
SEEDS ?= 0,1,2,3,4
MORE_SEEDS ?= 5,6,7,8,9,10,11,12,13,14,15,16,17,18,19
JOBS ?= 2
SWEEP = $(BIN)/mmaux sweep --recipe cpu --out checkpoints --executor local --parallel $(JOBS) --threads 1
TASKS = "--task sentiment --archs attention,concat,mmbt" "--task sarcasm --archs attention" \
	"--task relation --archs attention"
checkpoints: $(VENV)/.runtime
	@start=$$(date +%s); \
	for task in $(TASKS); do \
		$(SWEEP) $$task --seeds $(SEEDS) --layouts || exit 1; \
		if [ -n "$(MORE_SEEDS)" ]; then $(SWEEP) $$task --seeds $(MORE_SEEDS) --predictions-only || exit 1; fi; \
	done; \
	$(BIN)/mmaux effects checkpoints --store && \
	$(BIN)/python bench/rebuild_record.py --started $$start --out checkpoints/rebuild.json

## Re-estimate the shipped groups' effects and slice scores into checkpoints/.analysis/ (after a
## change to the estimator's code: tests/test_group_results.py says when they are stale).
analysis: $(VENV)/.runtime
	$(BIN)/mmaux effects checkpoints --store

## Refresh the README's screenshots (docs/*.png) from the running app in headless Chromium.
screenshots: $(VENV)/.test browser-deps
	MMAUX_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_browser.py

## Benchmarks (print measured ratios; nothing here is a test).
bench: $(VENV)/.test
	$(BIN)/python bench/aux_cost.py
	$(BIN)/python bench/synth_baselines.py
	$(BIN)/python bench/checkpoint_table.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/validate_images.py

## Empty mmaux's caches (`mmaux cache` shows where they are and what they hold).
clean-cache: $(VENV)/.runtime
	$(BIN)/mmaux cache --clear all

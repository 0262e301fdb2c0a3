# qts.observer: provision an Observer fleet and stress-test it.
# `make test` runs every test, lint and Molecule scenario; `make stress` is the main job.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
INVENTORY ?= inventories/local
ARGS ?=
# Bench knobs; see benchmarks/.
BENCH_SNAPSHOTS ?= 1000000
BENCH_RUNS ?= 20
HISTORY ?= artifacts/history.sqlite
RUN ?= artifacts/latest

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv test lint lint-python sanity pytest bench-observer bench-load bench-verdict bench-capacity bench-regression smoke capacity history report clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt files/observer/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed ## Create the virtualenv with the pinned controller and test tools

# Workers of the pytest suite: its modules run side by side (waits dominate: levels, cooldowns).
PYTEST_WORKERS ?= 2

test: venv collection ## Every test, lint and Molecule scenario, in timed phases (tools/phases.py)
	$(BIN)/python tools/phases.py \
	  --phase checks "lint=$(MAKE) --no-print-directory lint" \
	    "images=$(MAKE) --no-print-directory lab-images" \
	  --phase tests "pytest=$(MAKE) --no-print-directory pytest" \
	    "molecule=$(MAKE) --no-print-directory molecule" \
	    "sanity=$(MAKE) --no-print-directory sanity"

lint: lint-python lint-ansible lint-changelog lint-docs ## ruff, ansible-lint (production), the changelog and the docs

lint-python: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The Python versions ansible-core 2.19's controller supports, each found on PATH.
SANITY_PYTHONS ?= 3.11 3.12 3.13

sanity: venv ## ansible-test sanity, offline, on a copy under build/sanity (SANITY_PYTHONS)
	$(BIN)/python tools/sanity.py $(foreach version,$(SANITY_PYTHONS),--python $(version))

pytest: venv collection ## Unit and integration tests (PYTEST_WORKERS modules at once)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=12

bench-observer: venv ## Observer throughput, latency and RSS beside the naive loop
	$(BIN)/python benchmarks/bench_observer.py --snapshots $(BENCH_SNAPSHOTS)

bench-load: venv collection ## Load generator pacing at 50, 1000, 10000, 100000/s beside the runbook's
	$(BIN)/python benchmarks/bench_load.py

bench-verdict: venv collection ## BENCH_RUNS (20) smoke runs with one core busy: judged, passed, reasons
	$(BIN)/python benchmarks/bench_verdict.py --runs $(BENCH_RUNS)

smoke: venv collection ## The four levels compressed to about a minute: INVENTORY=, ARGS=
	$(BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=smoke $(ARGS)

capacity: venv collection ## Each host's highest sustainable rate (at most 10 minutes): INVENTORY=, ARGS=
	$(BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=capacity $(ARGS)

history: venv collection ## The runs of artifacts/history.sqlite with their verdicts and key figures: HISTORY=
	PYTHONPATH=$(CURDIR)/build/collections $(BIN)/python -m ansible_collections.qts.observer.plugins.plugin_utils.history --db $(HISTORY)

report: venv collection ## Write RUN's report.html again from its folder (default artifacts/latest)
	PYTHONPATH=$(CURDIR)/build/collections $(BIN)/python -m ansible_collections.qts.observer.plugins.plugin_utils.html_report $(RUN)

bench-regression: venv collection ## BENCH_RUNS (20) short runs, each compared with the one before: the false alarm rate
	$(BIN)/python benchmarks/bench_regression.py --runs $(BENCH_RUNS)

bench-capacity: venv collection ## The reference Observer's capacity on this machine, what limited it, the curve
	$(BIN)/python benchmarks/bench_capacity.py

clean: ## Remove the venv and build output
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis

-include mk/*.mk

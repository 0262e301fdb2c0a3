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

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv test lint lint-python pytest bench-observer bench-load bench-verdict bench-capacity smoke capacity clean

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
	    "molecule=$(MAKE) --no-print-directory molecule"

lint: lint-python lint-ansible ## ruff and ansible-lint (production profile)

lint-python: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

bench-capacity: venv collection ## The reference Observer's capacity on this machine, what limited it, the curve
	$(BIN)/python benchmarks/bench_capacity.py

clean: ## Remove the venv and build output
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis

-include mk/*.mk

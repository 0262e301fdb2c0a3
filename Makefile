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

.PHONY: help venv venv-core test test-unit test-process test-e2e test-lab pytest-group lint lint-python sanity pytest bench-observer bench-load bench-verdict bench-capacity bench-burst bench-regression bench-soak smoke soak capacity history merge ee-image ee-smoke report clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt files/observer/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed ## Create the virtualenv with the pinned controller and test tools

# make test: every job of tests/jobs.toml (lint, images, sanity, Molecule and the pytest
# groups), as many at once as this machine's cores carry (tools/phases.py); JOBS=a,b runs
# those jobs only (and what they need). The phase table, then the 20 slowest tests and
# fixtures, close the run.
JOBS ?=
TEST_TIMES ?= build/test-times

test: venv collection ## Every test, lint, sanity and Molecule scenario, scheduled for this machine
	$(BIN)/python tools/phases.py --jobs tests/jobs.toml --times $(TEST_TIMES) $(if $(JOBS),--only $(JOBS))

# Workers of a direct pytest run (make pytest, make test-<group>); make test sizes each group's.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
GROUP ?= unit
GROUP_ARGS ?=
# One group of the suite (or the share of it GROUP_ARGS picks: files, --ignore), on the workers
# tools/phases.py grants it (QTS_TEST_WORKERS).
pytest-group: venv collection
	$(BIN)/pytest -m $(GROUP) -n $(if $(filter-out 1,$(QTS_TEST_WORKERS)),$(QTS_TEST_WORKERS),0) --dist loadfile $(GROUP_ARGS) $(PYTEST_ARGS)

pytest: venv collection ## Every pytest test at once (PYTEST_WORKERS modules at once), no scheduling
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=20 $(PYTEST_ARGS)

test-unit: venv collection ## The in-process tests: the inner loop (about a minute)
	$(BIN)/pytest -m unit -n $(PYTEST_WORKERS) --durations=20 $(PYTEST_ARGS)

test-process: venv collection ## The tests of real processes on this machine
	$(BIN)/pytest -m process -n $(PYTEST_WORKERS) --dist loadfile --durations=20 $(PYTEST_ARGS)

test-e2e: venv collection ## The playbooks end to end on this machine
	$(BIN)/pytest -m e2e -n $(PYTEST_WORKERS) --dist loadfile --durations=20 $(PYTEST_ARGS)

test-lab: venv collection lab-images ## The lab tests (root): hosts over SSH, one module at a time
	$(BIN)/pytest -m lab -n 0 --durations=20 $(PYTEST_ARGS)

lint: lint-python lint-ansible lint-changelog lint-docs ## ruff, ansible-lint (production), the changelog and the docs

lint-python: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# CORES=2.21 runs that release only (default: every one of tests/ansible-core.toml).
CORES ?=

sanity: venv ## ansible-test sanity of every tested ansible-core (CORES=), offline, on copies under build/sanity
	$(BIN)/python tools/sanity.py $(foreach core,$(CORES),--core $(core))

bench-observer: venv ## Observer throughput, latency and RSS beside the naive loop
	$(BIN)/python benchmarks/bench_observer.py --snapshots $(BENCH_SNAPSHOTS)

bench-load: venv collection ## Load generator pacing at 50, 1000, 10000, 100000/s beside the runbook's
	$(BIN)/python benchmarks/bench_load.py

bench-verdict: venv collection ## BENCH_RUNS (20) smoke runs with one core busy: judged, passed, reasons
	$(BIN)/python benchmarks/bench_verdict.py --runs $(BENCH_RUNS)

# CORE=2.21 runs a playbook with that tested ansible-core (tests/ansible-core.toml) from its
# own virtualenv, made on first use; without CORE, .venv's (requirements.txt).
CORE ?=
ANSIBLE_BIN = $(if $(CORE),$(shell python3 tools/cores.py venv $(CORE)),$(BIN))

venv-core: ## The virtualenv of one tested ansible-core (CORE=2.21 makes .venv-2.21)
	$(if $(CORE),python3 tools/cores.py venv $(CORE),@echo "error: say which release: CORE=2.21" >&2; exit 2)

smoke: venv collection $(if $(CORE),venv-core) ## The four levels compressed to about a minute: INVENTORY=, ARGS=, CORE=
	$(ANSIBLE_BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=smoke $(ARGS)

# The soak's length in seconds (default: the profile's 4 hours).
SOAK_S ?=

soak: venv collection $(if $(CORE),venv-core) ## The spec's 25/s level for hours, its trends judged: SOAK_S= (seconds), INVENTORY=, ARGS=, CORE=
	$(ANSIBLE_BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=soak $(if $(SOAK_S),-e stress_soak_duration_s=$(SOAK_S)) $(ARGS)

capacity: venv collection $(if $(CORE),venv-core) ## Each host's highest sustainable rate (at most 10 minutes): INVENTORY=, ARGS=, CORE=
	$(ANSIBLE_BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=capacity $(ARGS)

history: venv collection ## The runs of artifacts/history.sqlite with their verdicts and key figures: HISTORY=
	PYTHONPATH=$(CURDIR)/build/collections $(BIN)/python -m ansible_collections.qts.observer.plugins.plugin_utils.history --db $(HISTORY)

merge: venv collection ## Judge the runs of a test's slices (AWX job slicing) as one run: RUNS="artifacts/<id> artifacts/<id>"
	PYTHONPATH=$(CURDIR)/build/collections $(BIN)/python -m ansible_collections.qts.observer.plugins.plugin_utils.merge $(RUNS)

ee-image: venv collection lab-images ## Build an EE-style image with podman, without a registry (tools/ee.py)
	$(BIN)/python tools/ee.py image

ee-smoke: venv collection lab-images ## The smoke profile inside that image via ansible-runner, as AWX runs a job, against 2 lab hosts (root, podman)
	$(BIN)/python tools/ee.py smoke

report: venv collection ## Write RUN's report.html again from its folder (default artifacts/latest)
	PYTHONPATH=$(CURDIR)/build/collections $(BIN)/python -m ansible_collections.qts.observer.plugins.plugin_utils.html_report $(RUN)

bench-regression: venv collection ## BENCH_RUNS (20) short runs, each compared with the one before: the false alarm rate
	$(BIN)/python benchmarks/bench_regression.py --runs $(BENCH_RUNS)

BENCH_PARALLEL ?= 4
bench-soak: venv collection ## BENCH_RUNS (20) short soaks of the reference Observer, BENCH_PARALLEL (4) at once: how many its trends falsely flag
	$(BIN)/python benchmarks/bench_soak.py --runs $(BENCH_RUNS) --parallel $(BENCH_PARALLEL)

bench-capacity: venv collection ## The reference Observer's capacity on this machine, what limited it, the curve
	$(BIN)/python benchmarks/bench_capacity.py

bench-burst: venv collection ## Bursts of 100 to 100,000 within 10 ms into the reference Observer, then examples/trading-day.yml
	$(BIN)/python benchmarks/bench_burst.py

clean: ## Remove the venv and build output
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis

-include mk/*.mk

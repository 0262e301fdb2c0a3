# Lab targets: N prod-like Observer hosts on this machine, reached over real SSH (tools/lab.py).
# Included by the Makefile (-include mk/*.mk). Needs root and openssh-server, openssh-client,
# sudo. Each host is an sshd on its own loopback address in its own mount, UTS and PID
# namespaces; `make lab-up` writes inventories/lab (git-ignored), state and keys go to lab/.
#   make lab-up LAB_HOSTS=5 && make provision INVENTORY=inventories/lab && make lab-down

LAB_HOSTS ?= 3
LAB_NAME ?= default
LAB_BASE_ADDR ?= 127.0.0.11
LAB_PORT ?= 2222
LAB_USER ?= deploy
LAB_PYTHON ?= $(firstword $(wildcard $(BIN)/python) $(PYTHON))
BENCH_SCALE_HOSTS ?= 10
LAB_OPTS = --name $(LAB_NAME) --base-addr $(LAB_BASE_ADDR) --port $(LAB_PORT) --user $(LAB_USER)

.PHONY: lab-up lab-down lab-status

lab-up: ## Start LAB_HOSTS (3) lab hosts over SSH, write inventories/lab (replaces any old lab)
	$(LAB_PYTHON) tools/lab.py up --hosts $(LAB_HOSTS) $(LAB_OPTS)

lab-down: ## Stop the lab: no process, mount, listener or key left
	$(LAB_PYTHON) tools/lab.py down $(LAB_OPTS)

lab-status: ## Show the lab's hosts (exit 1 unless all are up)
	$(LAB_PYTHON) tools/lab.py status $(LAB_OPTS)

.PHONY: bench-scale

bench-scale: venv collection ## Smoke on 1 lab host, then on BENCH_SCALE_HOSTS (10): wall times
	$(BIN)/python benchmarks/bench_scale.py --hosts $(BENCH_SCALE_HOSTS)

# Lab targets: N prod-like Observer hosts on this machine, reached over real SSH (tools/lab.py).
# Included by the Makefile (-include mk/*.mk). Needs root, systemd-container (systemd-nspawn),
# debootstrap and openssh-client. Each host is a systemd-nspawn container of a Debian image
# (built once, under lab/images/) booting systemd, with sshd on its own loopback address;
# `make lab-up` writes inventories/lab (git-ignored), state and keys go to lab/.
#   make lab-up LAB_HOSTS=5 && make provision INVENTORY=inventories/lab && make lab-down
#   make lab-up LAB_HOSTS=2 LAB_DISTRO=12,13       # one Debian 12 host, one Debian 13 host
#   make lab-up LAB_HOSTS=1 LAB_INIT=sshd          # a host without systemd (the supervisor)

LAB_HOSTS ?= 3
LAB_NAME ?= default
LAB_BASE_ADDR ?= 127.0.0.11
LAB_PORT ?= 2222
LAB_USER ?= deploy
# Debian release of the hosts (12 or 13; a list is cycled over the hosts) and their init.
LAB_DISTRO ?= 12
LAB_INIT ?= systemd
LAB_PYTHON ?= $(firstword $(wildcard $(BIN)/python) $(PYTHON))
BENCH_SCALE_HOSTS ?= 10
LAB_OPTS = --name $(LAB_NAME) --base-addr $(LAB_BASE_ADDR) --port $(LAB_PORT) --user $(LAB_USER)

.PHONY: lab-up lab-down lab-status lab-images

lab-up: ## Start LAB_HOSTS (3) systemd lab hosts over SSH (LAB_DISTRO=12|13, LAB_INIT=systemd|sshd)
	$(LAB_PYTHON) tools/lab.py up --hosts $(LAB_HOSTS) --distro $(LAB_DISTRO) --init $(LAB_INIT) $(LAB_OPTS)

lab-down: ## Stop the lab: no process, cgroup, listener or key left (the images stay)
	$(LAB_PYTHON) tools/lab.py down $(LAB_OPTS)

lab-status: ## Show the lab's hosts (exit 1 unless all are up)
	$(LAB_PYTHON) tools/lab.py status $(LAB_OPTS)

lab-images: ## Build the lab's Debian 12 and 13 images (cached; rebuilt when their recipe changes)
	$(LAB_PYTHON) tools/lab.py image --distro 12,13 $(LAB_OPTS)

.PHONY: bench-scale

bench-scale: venv collection ## Smoke on 1 lab host, then on BENCH_SCALE_HOSTS (10): wall and CPU per part
	$(BIN)/python benchmarks/bench_scale.py --hosts $(BENCH_SCALE_HOSTS)

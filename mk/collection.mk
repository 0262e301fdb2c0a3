# Collection targets: lint, Molecule, provisioning. Included by the Makefile (-include mk/*.mk).
#
# The checkout is made importable as `qts.observer` by a tree of symlinks under build/
# (build/collections/ansible_collections/qts/observer/<dir> -> <checkout>/<dir>), so nothing is
# installed and no symlink points back at the checkout's root (no loops for tools that walk).

COLLECTION_ROOT := $(CURDIR)/build/collections
COLLECTION_DIR := $(COLLECTION_ROOT)/ansible_collections/qts/observer
COLLECTION_PARTS := galaxy.yml meta plugins roles playbooks files
MOLECULE_SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard extensions/molecule/*/molecule.yml)))

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTION_ROOT)
export ANSIBLE_FORCE_COLOR ?= 0

.PHONY: collection lint-ansible molecule provision stress

collection: ## Link the checkout into build/collections as qts.observer (no install)
	@mkdir -p $(COLLECTION_DIR)
	@for part in $(COLLECTION_PARTS); do \
	  ln -sfn $(CURDIR)/$$part $(COLLECTION_DIR)/$$part; \
	done

lint-ansible: venv collection ## ansible-lint, production profile
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --profile production

molecule: venv collection ## Every Molecule scenario: converge, idempotence, verify, destroy
	@set -e; for scenario in $(MOLECULE_SCENARIOS); do \
	  echo "== molecule test -s $$scenario"; \
	  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule test -s $$scenario; \
	done

provision: venv collection ## Provision INVENTORY (default inventories/local): ARGS=--check, ...
	$(BIN)/ansible-playbook playbooks/provision.yml -i $(INVENTORY) $(ARGS)

stress: venv collection ## The full stress run (about 22 minutes): INVENTORY=, ARGS=
	$(BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=full $(ARGS)

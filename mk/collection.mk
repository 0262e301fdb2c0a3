# Collection targets: lint, Molecule, provisioning. Included by the Makefile (-include mk/*.mk).
#
# The checkout is made importable as `qts.observer` by a tree of symlinks under build/
# (build/collections/ansible_collections/qts/observer/<dir> -> <checkout>/<dir>), so nothing is
# installed and no symlink points back at the checkout's root (no loops for tools that walk).

COLLECTION_ROOT := $(CURDIR)/build/collections
COLLECTION_DIR := $(COLLECTION_ROOT)/ansible_collections/qts/observer
COLLECTION_PARTS := galaxy.yml meta plugins roles playbooks files changelogs
MOLECULE_SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard extensions/molecule/*/molecule.yml)))

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTION_ROOT)
export ANSIBLE_FORCE_COLOR ?= 0

.PHONY: collection lint-ansible lint-changelog lint-docs molecule provision stress

collection: ## Link the checkout into build/collections as qts.observer (no install)
	@mkdir -p $(COLLECTION_DIR)
	@for part in $(COLLECTION_PARTS); do \
	  ln -sfn $(CURDIR)/$$part $(COLLECTION_DIR)/$$part; \
	done

lint-ansible: venv collection ## ansible-lint, production profile
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --profile production

# The changelog the Ansible way: fragments and changelogs/changelog.yaml checked by
# antsibull-changelog, and CHANGELOG.md what it generates from them (regenerated into a copy
# and compared, so a stale CHANGELOG.md fails).
lint-changelog: venv collection ## antsibull-changelog lint; CHANGELOG.md as generated from changelogs/
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/antsibull-changelog lint
	@rm -rf build/changelog && mkdir -p build/changelog
	@cp -r changelogs galaxy.yml CHANGELOG.md build/changelog/
	@ln -sfn $(CURDIR)/plugins build/changelog/plugins
	cd build/changelog && PATH="$(CURDIR)/$(BIN):$$PATH" ANSIBLE_COLLECTIONS_PATH=$(COLLECTION_ROOT) $(CURDIR)/$(BIN)/antsibull-changelog generate
	@cmp -s build/changelog/CHANGELOG.md CHANGELOG.md || { echo "CHANGELOG.md is not what antsibull-changelog generates from changelogs/: run antsibull-changelog generate" >&2; diff -u CHANGELOG.md build/changelog/CHANGELOG.md | head -40 >&2; exit 1; }

lint-docs: venv collection ## antsibull-docs lint-collection-docs --plugin-docs (plugins and role argument specs)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/antsibull-docs lint-collection-docs --plugin-docs $(COLLECTION_DIR)

molecule: venv collection ## Every Molecule scenario: converge, idempotence, verify, destroy
	@set -e; for scenario in $(MOLECULE_SCENARIOS); do \
	  echo "== molecule test -s $$scenario"; \
	  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule test -s $$scenario; \
	done

provision: venv collection ## Provision INVENTORY (default inventories/local): ARGS=--check, ...
	$(BIN)/ansible-playbook playbooks/provision.yml -i $(INVENTORY) $(ARGS)

stress: venv collection ## The full stress run (about 22 minutes): INVENTORY=, ARGS=
	$(BIN)/ansible-playbook playbooks/stress.yml -i $(INVENTORY) -e stress_profile=full $(ARGS)

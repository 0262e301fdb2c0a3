"""Makes the collection importable for every test the way Ansible itself does:
its collection finder over build/collections (``make collection`` links it; ``make test``
does it). A plain sys.path entry would shadow the finder for the other tests in the run."""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / "build" / "collections"
if not (COLLECTIONS / "ansible_collections" / "qts" / "observer").exists():
    raise RuntimeError("the collection is not linked: run `make collection` (make test does)")
if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader([str(COLLECTIONS)])

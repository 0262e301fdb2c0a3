# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: the digest of the role's inputs on the controller, then the module on the host.

The options and the result are documented in ``plugins/modules/provision_check.py``.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.qts.observer.plugins.plugin_utils.provision import run_with_inputs_digest


class ActionModule(ActionBase):
    """Add the inputs' digest to the task's options and run the module of the same name."""

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        result.update(run_with_inputs_digest(self, task_vars or {}))
        return result

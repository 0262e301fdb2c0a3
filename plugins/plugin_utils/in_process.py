# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The actions that compute on the controller, in the controller's own process: what they
work on is the run's variables and what the hosts already returned, so a module run would
cost a fork, a Python start and the module's transfer for nothing."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible.plugins.action import ActionBase


class InProcessAction(ActionBase):
    """An action that needs no connection and runs no module: ``compute`` gets the options,
    validated against ``ARGUMENT_SPEC``, and returns what the task's result adds."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC: ClassVar[dict[str, dict]] = {}

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        result.update(self.compute(args))
        return result

    def compute(self, args: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only action: return the keys of ``result`` as top-level result keys, optionally failing.

It stands in for the collection's stress modules in the callback's end-to-end test, so the
callback sees the same result shapes from a real ansible-playbook run. An action plugin runs
in the controller's worker, with no module shipped to a Python process per task: the test
stays fast, and the results still reach the callbacks by the executor's ordinary path.

Arguments: ``result`` (dict), ``fail`` (bool), ``msg`` (failure message), ``counter_file``
and ``done_after``: count the calls and set ``qts_stress_progress.done`` from the
``done_after``-th call on, so that an ``until`` loop retries like the real polling task.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


def _count(path: str) -> int:
    count = 0
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            count = int(handle.read() or 0)
    count += 1
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(str(count))
    return count


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        args = self._task.args
        # A JSON round trip gives plain types whatever the templating produced.
        result.update(json.loads(json.dumps(args.get("result") or {})))
        if args.get("counter_file"):
            count = _count(args["counter_file"])
            progress = dict(result.get("qts_stress_progress") or {})
            progress.update(
                elapsed_s=float(count),
                sent=count * 5,
                done=count >= int(args.get("done_after", 1)),
            )
            result["qts_stress_progress"] = progress
        if boolean(args.get("fail", False)):
            result.update(failed=True, msg=args.get("msg", "failed on request"))
        result["changed"] = False
        return result

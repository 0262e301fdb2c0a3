# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: cut and pack the host's raw data (the module, on the host), then fetch the archive
(checked against the module's checksum of it) and unpack it on the controller, in this process.

Three tasks delegated to the controller (a folder, tar, the archive's removal) cost three
module runs per host; here they are a few system calls. The options and the result are
documented in ``plugins/modules/stress_collect.py``.
"""

from __future__ import annotations

import os
import tarfile

from ansible.plugins.action import ActionBase
from ansible.utils.hashing import secure_hash

ARCHIVE_NAME = "collect.tar.gz"


def _unpack(archive: str, folder: str) -> list[str]:
    """The archive's files written into folder (no owner kept, nothing outside it): their names."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [member for member in tar.getmembers() if member.isfile()]
        # The data filter refuses absolute paths, '..', links and devices: only files land.
        tar.extractall(folder, members=members, filter="data")
    return [member.name for member in members]


class ActionModule(ActionBase):
    """Collect one host's raw data into its folder of the run's artifacts."""

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        packed = self._execute_module(module_args=dict(self._task.args), task_vars=task_vars)
        result.update(packed, unpacked=[])
        if packed.get("failed"):
            return result  # its msg says why nothing was cut (local_dir missing, too)
        local_dir = self._task.args["local_dir"]
        try:
            # The host's folder exists whatever was collected, as the report expects.
            os.makedirs(local_dir, mode=0o755, exist_ok=True)
        except OSError as exc:
            result["problems"].append("fetch: cannot create %s: %s" % (local_dir, exc))
            return result
        if not packed.get("archive"):
            return result  # the module said why in its problems
        local_archive = os.path.join(local_dir, ARCHIVE_NAME)
        try:
            problem = self._fetch(packed["archive"], local_archive, task_vars)
            if problem:
                result["problems"].append("fetch: " + problem)
                return result
            result["unpacked"] = _unpack(local_archive, local_dir)
        except (OSError, tarfile.TarError) as exc:
            result["problems"].append("fetch: cannot unpack %s: %s" % (local_archive, exc))
        finally:
            if os.path.lexists(local_archive):
                os.unlink(local_archive)
        return result

    def _fetch(self, archive: dict, dest: str, task_vars: dict) -> str:
        """Fetch the module's archive to dest; what went wrong, or an empty string.

        Without become the connection reads the archive as the module wrote it, and the
        module's checksum of it stands for the remote stat ansible.builtin.fetch would run (a
        module run) to get one. With become, ansible.builtin.fetch's own handling (a slurp as
        the become user)."""
        if self._connection.become or not archive.get("checksum"):
            return self._fetch_as_fetch(archive["path"], dest, task_vars)
        self._connection.fetch_file(archive["path"], dest)
        fetched = secure_hash(dest)
        if fetched != archive["checksum"]:
            return "checksum mismatch: %s is %s on the host, %s fetched" % (
                archive["path"], archive["checksum"], fetched)  # fmt: skip
        return ""

    def _fetch_as_fetch(self, source: str, dest: str, task_vars: dict) -> str:
        """Fetch source to dest with ansible.builtin.fetch's action."""
        task = self._task.copy()
        task.args = {"src": source, "dest": dest, "flat": True, "fail_on_missing": True}
        fetch = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.fetch",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        fetched = fetch.run(task_vars=task_vars)
        if fetched.get("failed"):
            return str(fetched.get("msg") or "failed")[:1000]
        return ""

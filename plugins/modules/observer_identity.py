#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the Observer's identity, the digests of its code and of its stress
configuration, in one run on its host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: observer_identity
short_description: The digests of an Observer's code and of its stress configuration
version_added: "0.1.0"
description:
  - Reads, on the Observer's host, what makes two stress runs comparable, the Observer's code
    and its stress configuration. The report and the run history keep both digests; a run is
    compared only with runs of the same identity.
  - The code is every regular file named C(*.py), not hidden, at the top (not below) of
    O(install_dir) and of each of O(code_dirs). Its digest is the SHA-256 of the SHA-1 of each
    file, joined by commas in the order of the files' paths regardless of case (the digest
    M(ansible.builtin.find)'s checksums gave, so that runs recorded before still compare).
  - The configuration's digest is the SHA-256 of O(config_file), when it is a regular file
    (a symbolic link is not followed).
  - A folder or file that is missing or unreadable is not part of the identity; the task does
    not fail for it (an Observer with no Python code at those paths has no code digest).
author:
  - QTS (@qts)
options:
  install_dir:
    description: The Observer's install directory.
    type: path
    required: true
  code_dirs:
    description: Its package folders, relative to O(install_dir).
    type: list
    elements: str
    default: []
  config_file:
    description: Its stress configuration file.
    type: path
    required: true
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.read_only
"""

EXAMPLES = r"""
- name: Take the Observer's identity
  qts.observer.observer_identity:
    install_dir: /opt/qts_observer
    code_dirs: [qts_observer]
    config_file: /opt/qts_observer/config/stress_config.json
  register: identity
"""

RETURN = r"""
identity:
  description: The Observer's identity.
  returned: always
  type: dict
  contains:
    code_digest:
      description: The digest of its code; null when no Python file was found.
      type: str
      sample: 0f343b0931126a20f133d67c2b018a3b4f7a0a2a9a2f0b5b1f1d7d4c1c9e3a11
    code_files: {description: How many Python files the code digest covers., type: int, sample: 7}
    config_digest:
      description: The SHA-256 of its stress configuration; null when it is not a readable regular file.
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
"""

import fnmatch
import hashlib
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.provision_state import file_digest

CODE_PATTERN = "*.py"


def _digest(path: str, algorithm: str) -> str | None:
    """The file's digest, or None when it cannot be read."""
    try:
        return file_digest(path, algorithm)
    except OSError:
        return None


def _regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def code_files(folders: list[str]) -> list[str]:
    """The Python files at the top of each folder, in the order of their paths."""
    found = []
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found += [
            os.path.join(folder, name)
            for name in names
            if not name.startswith(".")
            and fnmatch.fnmatch(name, CODE_PATTERN)
            and _regular_file(os.path.join(folder, name))
        ]
    # Without regard to case, as the stress role's Jinja sort ordered them.
    return sorted(found, key=str.lower)


def identity(install_dir: str, code_dirs: list[str], config_file: str) -> dict:
    # Each package folder is named relative to the install directory, joined as the stress
    # role always joined them (a plain '/' between the two).
    folders = [install_dir] + ["%s/%s" % (install_dir, name) for name in code_dirs]
    checksums = [_digest(path, "sha1") for path in code_files(folders)]
    checksums = [checksum for checksum in checksums if checksum is not None]
    return {
        "code_digest": hashlib.sha256(",".join(checksums).encode()).hexdigest()
        if checksums
        else None,
        "code_files": len(checksums),
        "config_digest": _digest(config_file, "sha256") if _regular_file(config_file) else None,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "install_dir": {"type": "path", "required": True},
            "code_dirs": {"type": "list", "elements": "str", "default": []},
            "config_file": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    module.exit_json(
        changed=False,
        identity=identity(params["install_dir"], params["code_dirs"], params["config_file"]),
    )


if __name__ == "__main__":
    main()

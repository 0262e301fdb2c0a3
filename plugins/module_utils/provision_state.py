# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a role's provisioning left on a host, as a record a later run can compare.

Used on the host by the provision_check and provision_stamp modules (standard library only).
A record maps each managed path (and user, group, venv) to what it is now: its type, mode,
owner, group, and for a regular file its SHA-256. The stamp a completed provisioning writes
holds the record and the digest of the role's inputs; a later run with the same inputs whose
record is equal has nothing to do.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import stat
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.artifacts import write_atomic

STAMP_VERSION = 1
# The options of provision_check and provision_stamp (documented in doc_fragments/provision.py).
ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "stamp": {"type": "path", "required": True},
    "items": {"type": "list", "elements": "dict", "required": True},
    "variable_prefixes": {"type": "list", "elements": "str", "default": []},
    "facts": {"type": "list", "elements": "str", "default": []},
    "trees": {"type": "list", "elements": "path", "default": []},
    "inputs_digest": {"type": "str"},
}
KINDS = ("path", "tree", "venv", "user", "group")
# Written while the service runs, never by the role: the interpreter's byte-code caches.
_RUNTIME_NAMES = frozenset({"__pycache__"})
_RUNTIME_SUFFIXES = (".pyc",)
_TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "directory",
    stat.S_IFIFO: "fifo",
    stat.S_IFLNK: "link",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char device",
    stat.S_IFBLK: "block device",
}


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """The digest of a file's content, read in blocks (SHA-256 unless another is named)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_path(path: str) -> dict[str, Any]:
    """What one path is now: missing, or its type, mode, owner and group (and content or target)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"type": "missing"}
    kind = _TYPES.get(stat.S_IFMT(info.st_mode), "other")
    described: dict[str, Any] = {
        "type": kind,
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
    }
    if kind == "file":
        described["sha256"] = file_digest(path)
    elif kind == "link":
        described["target"] = os.readlink(path)
    return described


def is_runtime(name: str) -> bool:
    """Whether a file or folder name is one the interpreter writes (a byte-code cache)."""
    return name in _RUNTIME_NAMES or name.endswith(_RUNTIME_SUFFIXES)


def _describe_tree(root: str, excluded: set[str]) -> dict[str, dict[str, Any]]:
    """The root and everything under it (no link followed), byte-code caches and excluded paths aside."""
    record = {root: describe_path(root)}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            name for name in dirs
            if not is_runtime(name) and os.path.join(folder, name) not in excluded
        )  # fmt: skip
        for name in dirs + sorted(files):
            path = os.path.join(folder, name)
            if not is_runtime(name) and path not in excluded:
                record[path] = describe_path(path)
    return record


def _describe_venv(root: str) -> dict[str, dict[str, Any]]:
    """A venv: its interpreter's configuration and the distributions installed (names, versions)."""
    distributions = []
    lib = os.path.join(root, "lib")
    for python in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
        packages = os.path.join(lib, python, "site-packages")
        if os.path.isdir(packages):
            distributions += [
                "%s/%s" % (python, name)
                for name in sorted(os.listdir(packages))
                if name.endswith(".dist-info")
            ]
    return {
        os.path.join(root, "pyvenv.cfg"): describe_path(os.path.join(root, "pyvenv.cfg")),
        os.path.join(root, "bin", "python"): describe_path(os.path.join(root, "bin", "python")),
        root + " (distributions)": {"type": "distributions", "installed": distributions},
    }


def _describe_user(name: str) -> dict[str, Any]:
    """A user's entry and every group it belongs to (its primary and supplementary groups)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"type": "missing"}
    return {
        "type": "user",
        "uid": entry.pw_uid,
        "gid": entry.pw_gid,
        "home": entry.pw_dir,
        "shell": entry.pw_shell,
        "groups": sorted(set(os.getgrouplist(name, entry.pw_gid))),
    }


def _describe_group(name: str) -> dict[str, Any]:
    """A group's id. Not its members: another role adds its user to it (the monitor's to the
    Observer's group), and each user's own groups are recorded with the user."""
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return {"type": "missing"}
    return {"type": "group", "gid": entry.gr_gid}


def record_of(items: list[dict[str, Any]], stamp: str) -> dict[str, dict[str, Any]]:
    """The record of every item: {kind: path|tree|venv|user|group, name, exclude (a tree's)}.

    The stamp itself is never part of the record it is compared with."""
    record: dict[str, dict[str, Any]] = {}
    for item in items:
        kind, name = item["kind"], str(item["name"])
        if kind == "path":
            record[name] = describe_path(name)
        elif kind == "tree":
            excluded = {os.path.normpath(path) for path in item.get("exclude") or []} | {stamp}
            record.update(_describe_tree(os.path.normpath(name), excluded))
        elif kind == "venv":
            record.update(_describe_venv(os.path.normpath(name)))
        elif kind == "user":
            record["user " + name] = _describe_user(name)
        elif kind == "group":
            record["group " + name] = _describe_group(name)
        else:
            raise ValueError("unknown kind %r for %s: one of %s" % (kind, name, ", ".join(KINDS)))
    return record


def _what_differs(before: dict[str, Any], now: dict[str, Any]) -> str:
    if before.get("type") != now.get("type"):
        return "now %s, was %s" % (now.get("type"), before.get("type"))
    changed = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
    return "its %s changed" % ", ".join("content" if key == "sha256" else key for key in changed)


def first_difference(
    recorded: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]
) -> str | None:
    """The first item that differs between two records, said in words, or None when equal."""
    for name in sorted(set(recorded) | set(now)):
        if name not in recorded:
            return "%s appeared" % name
        if name not in now:
            return "%s is gone" % name
        if recorded[name] != now[name]:
            return "%s: %s" % (name, _what_differs(recorded[name], now[name]))
    return None


def read_stamp(path: str) -> tuple[dict[str, Any] | None, str]:
    """The stamp at path, or None and why it cannot be used."""
    try:
        with open(path, encoding="utf-8") as handle:
            stamp = json.load(handle)
    except FileNotFoundError:
        return None, "no record of an earlier provisioning (%s)" % path
    except (OSError, ValueError) as exc:
        return None, "the record %s cannot be read (%s)" % (path, exc)
    if not isinstance(stamp, dict) or stamp.get("version") != STAMP_VERSION:
        return None, "the record %s is of another layout" % path
    return stamp, ""


def write_stamp(path: str, stamp: dict[str, Any]) -> bool:
    """Write the stamp (mode 0600, replaced whole); False when it already says the same."""
    text = json.dumps(stamp, indent=1, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except (OSError, ValueError):
        pass
    write_atomic(path, text.encode(), mode=0o600)
    return True

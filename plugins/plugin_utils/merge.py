# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge the runs of one stress test's slices as one run (AWX job slicing, or any split of a
fleet into separate ``ansible-playbook`` runs over disjoint hosts).

Each slice's last play judged its own hosts only. This reads each slice's report.json,
checks that they are parts of one test (the same profile, seed, levels and limits; no host
in two), and writes a run of their own beside them: report.json and junit.xml over every
host, with the verdict one run over all the hosts would give (PASS only if every host of
every slice passed; each reason of each slice kept), report.html, and each host's raw data
linked from its slice. The slices stay as they are; the merged run is not added to the run
history (each slice already is).

  make merge RUNS="artifacts/<slice 1 run_id> artifacts/<slice 2 run_id>"
  python -m ansible_collections.qts.observer.plugins.plugin_utils.merge RUN_DIR RUN_DIR ...

Exit status 0 means PASS on every host, 1 FAIL, 2 slices that cannot be merged (and why).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.artifacts import (
    REPORT_FILE,
    new_run_id,
)
from ansible_collections.qts.observer.plugins.module_utils.verdicts import FAIL, PASS
from ansible_collections.qts.observer.plugins.plugin_utils.report import (
    now_utc,
    summary_lines,
)
from ansible_collections.qts.observer.plugins.plugin_utils.run_files import write_run

# What makes runs parts of one test: their slices must agree on each.
SAME_TEST_KEYS = (
    "schema_version", "profile", "seed", "levels_planned", "capacity_planned", "limits"
)  # fmt: skip
# Each run names its levels' snapshots after itself: not a setting of the test.
RUN_OWN_LEVEL_KEYS = ("run_id_prefix",)


def _test_settings(report: Mapping[str, Any]) -> dict:
    settings = {key: report.get(key) for key in SAME_TEST_KEYS}
    settings["levels_planned"] = [
        {k: v for k, v in level.items() if k not in RUN_OWN_LEVEL_KEYS}
        for level in settings["levels_planned"] or []
    ]
    return settings


class MergeError(Exception):
    """Slices that cannot be judged as one run; the message names the slice and the key."""


def read_slice(run_dir: str) -> dict:
    path = os.path.join(run_dir, REPORT_FILE)
    try:
        with open(path) as handle:
            report = json.load(handle)
    except OSError as error:
        raise MergeError("%s: cannot read it (%s)" % (path, error.strerror)) from None
    except ValueError as error:
        raise MergeError("%s: not JSON (%s)" % (path, error)) from None
    if not isinstance(report, dict) or not isinstance(report.get("hosts"), dict):
        raise MergeError("%s: not a qts.observer report (no hosts)" % path)
    report["artifacts_dir"] = os.path.realpath(run_dir)
    return report


def _check_one_test(slices: list[dict]) -> None:
    first = _test_settings(slices[0])
    for other in slices[1:]:
        theirs = _test_settings(other)
        for key in SAME_TEST_KEYS:
            if theirs[key] != first[key]:
                raise MergeError(
                    "%s and %s are not slices of one test: their %s differ"
                    % (slices[0]["run_id"], other["run_id"], key)
                )
    owners: dict[str, str] = {}
    for part in slices:
        for host in part["hosts"]:
            if host in owners:
                raise MergeError(
                    "host %s is in two slices (%s and %s): slices must not share a host"
                    % (host, owners[host], part["run_id"])
                )
            owners[host] = part["run_id"]


def _slice_entry(part: Mapping[str, Any]) -> dict:
    return {
        "run_id": part["run_id"],
        "run_dir": part["artifacts_dir"],
        "verdict": part.get("verdict"),
        "hosts": sorted(part["hosts"]),
    }


def merge(slices: list[Mapping[str, Any]], out_dir: str, run_id: str | None = None) -> dict:
    """The report of one run over every host of ``slices`` (their report.json contents)."""
    parts = [dict(part) for part in slices]
    if not parts:
        raise MergeError("no slice given")
    _check_one_test(parts)
    run_id = run_id or new_run_id()
    reasons = [reason for part in parts for reason in part.get("reasons") or []]
    first, settings = parts[0], _test_settings(parts[0])
    return {
        "schema_version": settings["schema_version"],
        "run_id": run_id,
        "profile": first.get("profile"),
        "seed": first.get("seed"),
        "started_at": min(str(p.get("started_at") or "") for p in parts) or None,
        "finished_at": now_utc(),
        # As one run over every host is judged: PASS only when no host of any slice failed.
        "verdict": FAIL if reasons else PASS,
        "reasons": reasons,
        "artifacts_dir": os.path.join(os.path.abspath(out_dir), run_id),
        "levels_planned": settings["levels_planned"],
        "capacity_planned": settings["capacity_planned"],
        "timings": first.get("timings") or {},
        "limits": first.get("limits") or {},
        "hosts": {host: entry for part in parts for host, entry in part["hosts"].items()},
        "slices": [_slice_entry(part) for part in parts],
        "controller": first.get("controller"),
    }


def _link_host_data(report: Mapping[str, Any]) -> None:
    """Each host's raw data, where report.html looks for it: linked from its slice's run."""
    folder = report["artifacts_dir"]
    for part in report["slices"]:
        for host in part["hosts"]:
            source = os.path.join(part["run_dir"], host)
            if os.path.isdir(source):
                os.symlink(os.path.relpath(source, folder), os.path.join(folder, host))


def write(report: Mapping[str, Any]) -> None:
    os.makedirs(report["artifacts_dir"], mode=0o755)
    _link_host_data(report)
    write_run(report)


def main(argv: list[str] | None = None) -> int:
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="Judge the runs of a test's slices as one run.")
    parser.add_argument("run_dirs", nargs="+", help="each slice's run folder (artifacts/<run_id>)")
    parser.add_argument(
        "--artifacts-dir",
        help="where the merged run's folder goes (default: beside the first slice's)",
    )
    args = parser.parse_args(argv)
    out_dir = args.artifacts_dir or os.path.dirname(os.path.realpath(args.run_dirs[0]))
    try:
        report = merge([read_slice(path) for path in args.run_dirs], out_dir)
        write(report)
    except (MergeError, OSError) as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    print("\n".join(summary_lines(report)))
    return 0 if report["verdict"] == PASS else 1


if __name__ == "__main__":
    raise SystemExit(main())

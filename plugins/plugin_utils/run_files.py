# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's files on the controller, written the one way every run is: report.json,
junit.xml and report.html, each atomically, then ``latest`` pointed at the run's folder.
Used by the stress run's verdict (``action/stress_verdict.py``) and by ``make merge``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.artifacts import (
    JUNIT_FILE,
    REPORT_FILE,
    link_latest,
    write_atomic,
)
from ansible_collections.qts.observer.plugins.plugin_utils.html_report import HTML_FILE, render
from ansible_collections.qts.observer.plugins.plugin_utils.junit import junit_xml
from ansible_collections.qts.observer.plugins.plugin_utils.report import collection_version


def write_run(report: Mapping[str, Any], trends: Mapping[str, list[dict]] | None = None) -> None:
    """The files of ``report`` in its ``artifacts_dir`` (which exists); ``trends`` are the
    history's points for report.html's charts, not part of report.json."""
    folder = report["artifacts_dir"]
    text = json.dumps(report, indent=2, default=str) + "\n"
    write_atomic(os.path.join(folder, REPORT_FILE), text.encode("utf-8"))
    write_atomic(os.path.join(folder, JUNIT_FILE), junit_xml(report))
    # The collection that judged the run, as report.json says (a report without it: this one).
    version = (report.get("controller") or {}).get("collection") or collection_version()
    page = render(report, folder, collection_version=version, trends=trends)
    write_atomic(os.path.join(folder, HTML_FILE), page.encode("utf-8"))
    link_latest(os.path.dirname(folder), os.path.basename(folder))

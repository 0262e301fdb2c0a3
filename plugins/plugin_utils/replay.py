# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replay level's capture, checked on the controller before anything starts: every line an
ObservationSnapshot of the Observer's contract (``files/observer/schemas/
observation_snapshot.schema.json``, checked by the Observer's own compiled validator, which
returns what jsonschema does), the first bad line refusing the run with its file and number.
The level's rate and length are then the capture's (``module_utils/capture.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.capture import (
    CaptureError,
    read_capture,
    replay_timing,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import (
    MAX_LEVEL_DURATION_S,
    MAX_LEVEL_RATE,
)

OBSERVER_FILES = Path(__file__).resolve().parents[2] / "files" / "observer"
SCHEMA = OBSERVER_FILES / "schemas" / "observation_snapshot.schema.json"
COMPILER = OBSERVER_FILES / "qts_observer" / "schema_compiler.py"


@cache
def snapshot_validator() -> Callable[[Any], bool]:
    """The snapshot schema compiled by the Observer's own compiler (standard library only)."""
    spec = importlib.util.spec_from_file_location("qts_observer_schema_compiler", COMPILER)
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load %s" % COMPILER)
    compiler = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up by name while it loads.
    sys.modules[spec.name] = compiler
    spec.loader.exec_module(compiler)
    return compiler.compile_schema(json.loads(SCHEMA.read_text()))


def _why(document: object) -> str:
    """jsonschema's reason, where the controller has it; the schema's name otherwise."""
    try:
        import jsonschema  # noqa: PLC0415 (optional on the controller)
    except ImportError:
        return "does not match observation_snapshot.schema.json"
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(document)
    )
    where = "/".join(str(part) for part in error.absolute_path) if error else ""
    return "does not match observation_snapshot.schema.json%s: %s" % (
        " at %s" % where if where else "",
        error.message if error else "invalid",
    )


def check_capture(path: str) -> list[str]:
    """The first problem of a capture, naming the file and the line (empty when it is sound)."""
    valid = snapshot_validator()
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    document = json.loads(raw)
                except ValueError as exc:
                    return ["%s line %d: not JSON (%s)" % (path, number, exc)]
                if not valid(document):
                    return ["%s line %d: not an ObservationSnapshot: %s"
                            % (path, number, _why(document))]  # fmt: skip
    except OSError as exc:
        return ["cannot read the capture %s: %s" % (path, exc.strerror)]
    return []


def replay_level(level: dict, where: str) -> list[str]:
    """Check a replay level's capture and give the level its rate and length from it (the
    capture's path made absolute); its problems, each naming the level."""
    shape = level["shape"]
    path = os.path.abspath(os.path.expanduser(shape["capture"]))
    problems = check_capture(path)
    if problems:
        return ["%s.shape.capture: %s" % (where, problem) for problem in problems]
    speed = float(shape.get("speed", 1.0))
    try:
        offsets, _lines = read_capture(path, speed)
    except CaptureError as exc:
        return ["%s.shape.capture: %s" % (where, exc)]
    rate, duration = replay_timing(len(offsets), offsets[-1])
    # The bounds of any level's rate and length (profile.validate_levels).
    if not (0 < rate <= MAX_LEVEL_RATE and duration <= MAX_LEVEL_DURATION_S):
        return [
            "%s.shape: %d snapshots over %g s at speed %g make a level of %g s at %g/s: a level "
            "lasts at most %d s and offers at most %d/s; change the speed"
            % (where, len(offsets), offsets[-1] * speed, speed, duration, rate, MAX_LEVEL_DURATION_S,
               MAX_LEVEL_RATE)
        ]  # fmt: skip
    level["rate"], level["duration_s"] = rate, duration
    level["shape"] = dict(shape, capture=path, speed=speed)
    return []

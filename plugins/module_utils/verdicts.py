# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdict words and how verdicts combine, in one place: the gate, the report, junit.xml
and the regression check all speak them. Standard library only.

A verdict is PASS only when nothing under it failed or went unmeasured: FAIL beats NOT
MEASURED (what could not be measured is never a PASS), which beats PASS. UNREACHABLE (a host)
and NOT RUN (a level) are states rather than judgments of figures: the report decides what they
make of a host's verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

PASS = "PASS"  # noqa: S105 (a verdict word, not a password)
FAIL = "FAIL"
NOT_MEASURED = "NOT MEASURED"
UNREACHABLE = "UNREACHABLE"
NOT_RUN = "NOT RUN"


def verdict_of(failed: bool, unmeasured: bool) -> str:
    """FAIL beats NOT MEASURED beats PASS."""
    return FAIL if failed else NOT_MEASURED if unmeasured else PASS


def combine(verdicts: Iterable[str | None]) -> str:
    """The verdict of a whole from its parts' (PASS for no part: nothing failed)."""
    given = set(verdicts)
    return verdict_of(FAIL in given, NOT_MEASURED in given)


def passed(verdict: str) -> bool:
    """What a task tests, rather than a verdict word."""
    return verdict == PASS

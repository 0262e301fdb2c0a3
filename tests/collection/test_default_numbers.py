"""Each default number has one home: the spec's levels, run-wide limits and timings in
plugins/module_utils/profile.py, the capacity search's settings in capacity.py. The README, the
stress role's argument specs and its defaults file repeat them for their readers; every copy
is read here and must say what its home says, so that a changed default cannot leave a stale
number behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.qts.observer.plugins.module_utils.capacity import (
    ARRIVALS,
    SEARCH_DEFAULTS,
)
from ansible_collections.qts.observer.plugins.module_utils.faults import (
    FAULT_DEFAULTS,
    FAULT_TYPES,
    MIN_GAP_S,
    RECOVERY_SECONDS,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import (
    PROFILE_TIMINGS,
    RUN_LIMITS,
    THRESHOLD_KEYS,
    profile_levels,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
DEFAULTS_FILE = (REPO / "roles" / "stress" / "defaults" / "main.yml").read_text()
OPTIONS = yaml.safe_load((REPO / "roles" / "stress" / "meta" / "argument_specs.yml").read_text())[
    "argument_specs"
]["main"]["options"]
NUMBER = r"(\d[\d,]*(?:\.\d+)?)"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _description(option: dict) -> str:
    text = option["description"]
    return " ".join(text) if isinstance(text, list) else text


def _comment_above(variable: str) -> str:
    """The comment block right above a variable of the defaults file, as one line."""
    lines = DEFAULTS_FILE.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(variable + ":"))
    block = []
    for line in reversed(lines[:index]):
        if not line.startswith("#"):
            break
        block.insert(0, line.lstrip("# "))
    return " ".join(block)


def _pairs(text: str, pattern: str, keys) -> dict[str, list[float]]:
    """Every number the text gives a key, by a pattern with the key and the number."""
    found: dict[str, list[float]] = {}
    for key, value in re.findall(pattern, text):
        if key in keys:
            found.setdefault(key, []).append(_number(value))
    return found


def _assert_all_said_and_equal(found: dict[str, list[float]], home: dict, where: str) -> None:
    assert sorted(found) == sorted(home), "%s: keys missing %s" % (
        where,
        sorted(set(home) - set(found)),
    )
    wrong = {key: values for key, values in found.items() if set(values) != {float(home[key])}}
    assert not wrong, "%s says %s; the home says %s" % (
        where,
        wrong,
        {key: home[key] for key in wrong},
    )


# Where the run-wide limits are said, and how a key is followed by its number there.
LIMITS_SAID = {
    "README": (README, r"`(\w+)` " + NUMBER),
    "argument_specs stress_limits": (
        _description(OPTIONS["stress_limits"]),
        r"C\((\w+)\) " + NUMBER,
    ),
    "defaults/main.yml stress_limits": (_comment_above("stress_limits"), r"(\w+) \(" + NUMBER),
}


@pytest.mark.parametrize("where", sorted(LIMITS_SAID))
def test_every_run_wide_limit_is_said_as_profile_py_sets_it(where: str) -> None:
    text, pattern = LIMITS_SAID[where]
    _assert_all_said_and_equal(_pairs(text, pattern, RUN_LIMITS), RUN_LIMITS, where)


def test_every_capacity_setting_is_said_as_capacity_py_sets_it() -> None:
    _assert_all_said_and_equal(
        _pairs(_comment_above("stress_capacity"), r"(\w+) \(" + NUMBER, SEARCH_DEFAULTS),
        SEARCH_DEFAULTS,
        "defaults/main.yml stress_capacity",
    )
    suboptions = dict(OPTIONS["stress_capacity"]["options"])
    # The one setting that is a word, not a number: its choices are capacity.py's.
    assert suboptions.pop("arrivals")["choices"] == list(ARRIVALS)
    assert sorted(suboptions) == sorted(SEARCH_DEFAULTS)
    said = {}
    for key, option in suboptions.items():
        match = re.search(r"\(default " + NUMBER, _description(option))
        assert match, "argument_specs stress_capacity.%s gives no default" % key
        said[key] = [_number(match.group(1))]
    _assert_all_said_and_equal(said, SEARCH_DEFAULTS, "argument_specs stress_capacity")


def test_the_spec_levels_and_thresholds_are_said_as_profile_py_sets_them() -> None:
    levels = profile_levels("full")
    text = _description(OPTIONS["stress_levels"])
    rates = ", ".join("%g" % level["rate"] for level in levels)
    assert "%s snapshots/s for %g s each" % (rates, levels[0]["duration_s"]) in text
    for key in THRESHOLD_KEYS:
        values = ", ".join("%g" % level["thresholds"][key] for level in levels)
        assert "C(%s) %s" % (key, values) in text, key
    smoke = profile_levels("smoke")
    assert "the same levels and thresholds, %g s each" % smoke[0]["duration_s"] in text
    assert (
        "`full` (spec: %s/s, %g s each), `smoke` (same levels, %g s each)"
        % (
            rates,
            levels[0]["duration_s"],
            smoke[0]["duration_s"],
        )
        in README
    )


def test_the_profiles_timings_are_said_as_profile_py_sets_them() -> None:
    def waits(profile: str) -> str:
        timings = PROFILE_TIMINGS[profile]
        return "/".join(
            "%g" % timings[key] for key in ("cooldown_s", "setup_wait_s", "final_cooldown_s")
        )

    assert "(%s full, %s smoke)" % (waits("full"), waits("smoke")) in README
    assert "(full %s, smoke %s)" % (waits("full"), waits("smoke")) in _comment_above(
        "stress_cooldown_s"
    )
    windows = "full %g, smoke %g" % (
        PROFILE_TIMINGS["full"]["sustained_window_s"],
        PROFILE_TIMINGS["smoke"]["sustained_window_s"],
    )
    assert windows in _description(OPTIONS["stress_sustained_window_s"])
    assert "(%s)" % windows in _comment_above("stress_sustained_window_s")


def test_a_faults_default_limits_and_types_are_said_as_faults_py_sets_them() -> None:
    """stress_faults' limits (max_recovery_s, back_within_s) in the defaults file's comment and
    the argument spec, and every fault type in both and the README's table."""
    for where, text in (
        ("defaults/main.yml stress_faults", _comment_above("stress_faults")),
        ("argument_specs stress_faults", _description(OPTIONS["stress_faults"])),
    ):
        said = _pairs(text, r"(\w+)\)? \(" + NUMBER, FAULT_DEFAULTS)
        _assert_all_said_and_equal(said, FAULT_DEFAULTS, where)
        for kind in FAULT_TYPES:
            assert re.search(r"\b%s\b" % kind, text), "%s does not name %s" % (where, kind)
    table = {row.split("|")[1].strip(" `") for row in README.splitlines() if row.startswith("| `")}
    assert set(FAULT_TYPES) <= table
    assert "3 seconds in a row" in README and RECOVERY_SECONDS == 3
    assert "at least 5 s after the one" in README and MIN_GAP_S == 5.0

"""The compiled snapshot validator must agree with jsonschema on every document.

jsonschema (Draft 2020-12) is the contract; ``compile_schema`` is the fast
path.  Every check here compares the two on the same input: real jsonschema,
no mocks.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
from collections import OrderedDict, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "files" / "observer"))

from qts_observer.schema_compiler import (  # noqa: E402
    SchemaCompileError,
    compile_schema,
)

pytestmark = pytest.mark.unit

SCHEMA_PATH = ROOT / "files" / "observer" / "schemas" / "observation_snapshot.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
CONTRACT = jsonschema.Draft202012Validator(SCHEMA)

# Several builds of the same schema, kept across examples so their memos carry
# state from one document to the next: default, memo off, and a tiny memo that
# fills, switches off and re-probes constantly.
COMPILED = {
    "default": compile_schema(SCHEMA),
    "no-memo": compile_schema(SCHEMA, memo_size=0),
    "tiny-memo": compile_schema(SCHEMA, memo_size=2, memo_max_len=40, memo_probe_interval=7),
}

SETTINGS = settings(
    max_examples=700,  # x BATCH documents
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Text(str):
    pass


def assert_agrees(doc: Any) -> bool:
    expected = CONTRACT.is_valid(doc)
    for label, validate in COMPILED.items():
        got = validate(doc)
        assert isinstance(got, bool)
        assert got == expected, f"{label}: compiled={got} jsonschema={expected} for {doc!r}"
    return expected


# --------------------------------------------------------------------------- #
# Documents following the schema, and near misses                            #
# --------------------------------------------------------------------------- #
# Hypothesis drives a seed; a plain ``random.Random`` builds the documents.
# Drawing each of the ~30 leaves through Hypothesis costs ~10 ms a document on
# this machine, the seeded builder ~50 us, so many more documents get checked.
DIGITS = "0123456789"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + DIGITS
LOWER = "abcdefghijklmnopqrstuvwxyz"
RUN_ID_CHARS = ALNUM + "._:-"
SOURCE_CHARS = ALNUM + "._:/ -"
SYMBOL_CHARS = ALNUM + "._:/-"
# Characters just outside the classes: other scripts' digits, lookalikes, controls.
ODD_CHARS = "\n\r\t \ufeff\u00a0\u0663\uff12\u00e9\u0130\u212a/\\+,;@#%é😀\x00\ud800"

NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    -0.0,
    0.0,
    1,
    -1,
    1.0,
    1.5,
    -1e-300,
    5e-324,
    99.99999999999999,
    100,
    100.0,
    100.00000000000001,
    101,
    1e15,
    10**15,
    10**15 + 1,
    1.0000000000000002e15,
    2**63,
    10**400,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "5",
    "100",
    "1e3",
    "running",
    "Running",
    "a" * 32,
    "a" * 33,
    "x" * 128,
    "x" * 129,
    "x" * 100_000,
    "é",
    "\n",
    "\ufeff",
    [],
    [1],
    ["running"],
    {},
    {"a": 1},
]
# Limits of the schema's numbers and their neighbours.
BOUNDARIES: list[Any] = [
    0,
    0.0,
    -0.0,
    -1,
    5e-324,
    -5e-324,
    100,
    100.0,
    math.nextafter(100.0, math.inf),
    math.nextafter(100.0, 0),
    101,
    1e15,
    10**15,
    10**15 - 1,
    10**15 + 1,
    math.nextafter(1e15, math.inf),
    math.nextafter(1e15, 0),
    float("nan"),
    float("inf"),
    float("-inf"),
    1.0,
    2.5,
]


def near_miss(ts: str, how: int) -> str:
    """Variants of a valid timestamp that are (mostly) just outside the pattern."""
    variants = [
        ts[:5] + "13" + ts[7:],  # month 13
        ts[:5] + "00" + ts[7:],  # month 00
        ts[:8] + "32" + ts[10:],  # day 32
        ts[:8] + "00" + ts[10:],  # day 00
        ts[:11] + "24" + ts[13:],  # hour 24
        ts[:14] + "60" + ts[16:],  # minute 60
        ts[:17] + "61" + ts[19:],  # second 61
        ts[:17] + "60" + ts[19:],  # leap second: valid
        ts[:10] + "t" + ts[11:],  # lowercase t
        ts[:10] + " " + ts[11:],  # space separator
        ts[:19],  # no timezone
        ts[:19] + "z",  # lowercase z
        ts[:19] + ".Z",  # dot without digits
        ts[:19] + ".1234567890Z",  # 10 fraction digits
        ts[:19] + ".123456789Z",  # 9 fraction digits: valid
        ts[:19] + "+24:00",
        ts[:19] + "+2300",
        ts[:19] + "+23:59",  # valid
        ts + "\n",  # valid: `$` matches before a final newline
        ts + "\n\n",
        "\n" + ts,
        " " + ts,
        ts + " ",
        "\ufeff" + ts,  # BOM
        ts.replace("1", "\u0663", 1),  # ARABIC-INDIC DIGIT THREE
        ts.replace("2", "\uff12", 1),  # FULLWIDTH DIGIT TWO
        "+" + ts,  # 5-digit year
        ts[1:],  # 3-digit year
        ts + ts,
        "",
    ]
    return variants[how % len(variants)]


N_NEAR_MISSES = 30
MAX_LENGTHS = {"run_id": 128, "source": 128, "symbol": 32, "status": 32}
LIMITS = {"price": (0, 10**15), "volume": (0, 10**15), "memory_usage": (0, 100)}


def neighbours(limits: tuple[int, int]) -> list[Any]:
    """Each limit as int and float, and the closest values on either side."""
    out: list[Any] = []
    for limit in limits:
        f = float(limit)
        out += [limit, f, limit - 1, limit + 1, math.nextafter(f, -math.inf)]
        out += [math.nextafter(f, math.inf), -f if limit else -0.0]
    return out


class Maker:
    """Builds snapshots, defective snapshots and arbitrary JSON from one seed."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def length(self, lo: int, hi: int) -> int:
        if self.chance(0.25):
            return self.r.choice((lo, hi))  # boundary lengths
        return self.r.randint(lo, min(hi, lo + 16) if self.chance(0.8) else hi)

    def text(self, alphabet: str, lo: int, hi: int) -> str:
        return "".join(self.r.choices(alphabet, k=self.length(lo, hi)))

    def two(self, lo: int, hi: int) -> str:
        n = self.r.choice((lo, hi)) if self.chance(0.3) else self.r.randint(lo, hi)
        return f"{n:02d}"

    def timestamp(self) -> str:
        if self.chance(0.2):
            offset = timezone(timedelta(minutes=self.r.randint(-(24 * 60 - 1), 24 * 60 - 1)))
            moment = datetime(1, 1, 1, tzinfo=offset) + timedelta(
                seconds=self.r.randrange(9998 * 365 * 86400), microseconds=self.r.randrange(10**6)
            )
            return moment.isoformat()
        year = self.r.choice((0, 9999, 2026)) if self.chance(0.2) else self.r.randint(0, 9999)
        fraction = "" if self.chance(0.3) else "." + self.text(DIGITS, 1, 9)
        zone = (
            "Z" if self.chance(0.4) else f"{self.r.choice('+-')}{self.two(0, 23)}:{self.two(0, 59)}"
        )
        return (
            f"{year:04d}-{self.two(1, 12)}-{self.two(1, 31)}T{self.two(0, 23)}:"
            f"{self.two(0, 59)}:{self.two(0, 60)}{fraction}{zone}"
        )

    def number(self, lo: float, hi: float, *, integral: bool, open_lo: bool) -> Any:
        kind = self.r.randrange(5)
        if kind == 0:
            return self.r.choice([b for b in BOUNDARIES if isinstance(b, int) or integral is False])
        if kind == 1:
            return self.r.randint(int(lo) + open_lo, int(hi))
        if kind == 2:
            return float(self.r.randint(int(lo) + open_lo, int(hi)))
        if kind == 3 and not integral:
            return self.r.uniform(lo, hi) or hi
        return self.r.choice([int(lo) + open_lo, float(hi), int(hi)])

    def valid_doc(self) -> dict[str, Any]:
        ts = self.timestamp()
        price = self.number(0, 1e15, integral=False, open_lo=True)
        volume = self.number(0, 1e15, integral=True, open_lo=False)
        memory = self.number(0, 100, integral=False, open_lo=False)
        # Keep boundary picks only where they are valid for that field.
        if not (isinstance(price, (int, float)) and 0 < price <= 1e15):
            price = 1e15
        if (isinstance(volume, float) and not volume.is_integer()) or not 0 <= volume <= 1e15:
            volume = 0
        if not 0 <= memory <= 100:
            memory = 100
        return {
            "meta": {
                "run_id": self.text(RUN_ID_CHARS, 1, 128),
                "timestamp": ts,
                "source": self.r.choice(["stress_test_simulation", "lab/feed 1"])
                if self.chance(0.5)
                else self.text(SOURCE_CHARS, 1, 128),
            },
            "market_data": {
                "symbol": "STRESS_TEST" if self.chance(0.4) else self.text(SYMBOL_CHARS, 1, 32),
                "price": price,
                "volume": volume,
                # Often the same timestamp twice, as producers do.
                "timestamp": ts if self.chance(0.5) else self.timestamp(),
            },
            "system_state": {
                "status": "running"
                if self.chance(0.4)
                else self.r.choice(LOWER) + self.text(LOWER + DIGITS + "_", 0, 31),
                "memory_usage": memory,
            },
        }

    def nasty(self) -> Any:
        kind = self.r.randrange(4)
        if kind == 0:
            return self.r.choice(NASTY)
        if kind == 1:
            return near_miss(self.timestamp(), self.r.randrange(N_NEAR_MISSES))
        if kind == 2:
            return self.r.choice(BOUNDARIES)
        return self.json_value(2)

    def string_defect(self, key: str, value: str) -> str:
        r = self.r
        pos = r.randint(0, len(value))
        limit = MAX_LENGTHS.get(key, 40)
        return r.choice(
            [
                lambda: (value * 200)[: limit + r.choice((0, 1))],
                lambda: (value * 200)[: limit + r.choice((0, 1))],
                lambda: value + "\n",
                lambda: value + "\n\n",
                lambda: "\ufeff" + value,
                lambda: value[:pos] + r.choice(ODD_CHARS) + value[pos:],
                lambda: value[:pos] + r.choice(ODD_CHARS) + value[pos + 1 :],
                value.upper,
                lambda: value[:-1],
                lambda: (value * 200)[: r.choice((31, 32, 33, 127, 128, 129))],
                lambda: near_miss(value, r.randrange(N_NEAR_MISSES)),
                lambda: "",
            ]
        )()

    def number_defect(self, key: str, value: float) -> Any:
        if key in LIMITS and self.chance(0.6):
            return self.r.choice(neighbours(LIMITS[key]))
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        return self.r.choice(
            [
                -value,
                as_float,
                as_float + 0.5,
                math.nextafter(as_float, math.inf),
                math.nextafter(as_float, -math.inf),
                str(value),
                value * 10**20,
                True,
                self.r.choice(BOUNDARIES),
                self.r.choice(BOUNDARIES),
            ]
        )

    def mutated_doc(self) -> Any:
        """A valid snapshot with one (mostly) to three targeted defects."""
        doc: Any = self.valid_doc()
        for _unused in range(self.r.choice((1, 1, 1, 1, 2, 3))):
            nodes = [(doc, section) for section in doc]
            nodes += [
                (doc[section], key)
                for section in doc
                if isinstance(doc[section], dict)
                for key in doc[section]
            ]
            parent, key = self.r.choice(nodes)
            value = parent[key]
            action = self.r.randrange(8)
            if action == 0:
                del parent[key]
            elif action == 1:
                extra = self.r.choice([key.upper(), "extra", "", key + " ", "\ufeff" + key])
                parent[extra] = self.nasty()
            elif action == 2:
                parent[key] = self.nasty()
            elif isinstance(value, str):
                parent[key] = self.string_defect(key, value)
            elif isinstance(value, (int, float)):
                parent[key] = self.number_defect(key, value)
            elif isinstance(value, dict) and self.chance(0.5):
                parent[key] = [value] if self.chance(0.5) else OrderedDict(value)
            else:
                parent[key] = self.nasty()
            if not doc:
                break
        if self.chance(0.05):
            doc = self.r.choice([[doc], json.dumps(doc), None, (doc,)])
        return doc

    def json_string(self) -> str:
        if self.chance(0.5):
            return self.text(ALNUM + ODD_CHARS + "-:._", 0, 12)
        return "".join(chr(self.r.randrange(0x110000)) for _unused in range(self.length(0, 8)))

    def json_value(self, depth: int) -> Any:
        kind = self.r.randrange(9 if depth > 0 else 6)
        if kind == 0:
            return self.r.choice([None, True, False])
        if kind == 1:
            return self.r.choice([self.r.randint(-(2**70), 2**70), self.r.randint(-5, 200)])
        if kind == 2:
            return self.r.choice(
                [self.r.uniform(-1e20, 1e20), self.r.random() * 200, *BOUNDARIES[:8]]
            )
        if kind == 3:
            return self.json_string()
        if kind == 4:
            return self.timestamp()
        if kind == 5:
            return self.r.choice(NASTY)
        if kind == 6:
            return [self.json_value(depth - 1) for _unused in range(self.r.randint(0, 3))]
        return {
            self.json_string(): self.json_value(depth - 1)
            for _unused in range(self.r.randint(0, 3))
        }

    def shaped_doc(self) -> Any:
        """Snapshot-shaped objects whose leaves are anything, valid or not."""
        doc: Any = self.valid_doc()
        for section in list(doc):
            for key in list(doc[section]):
                if self.chance(0.3):
                    doc[section][key] = self.json_value(1)
        return doc


seeds = st.integers(min_value=0, max_value=2**64 - 1)
# Hypothesis' own cost is ~2 ms an example here, so each example checks a
# batch of documents built from its seed.
BATCH = 3


def batches(build: Callable[[Maker], Any]) -> st.SearchStrategy[list[Any]]:
    def make(seed: int) -> list[Any]:
        maker = Maker(seed)
        return [build(maker) for _unused in range(BATCH)]

    return seeds.map(make)


valid_snapshots = batches(Maker.valid_doc)
mutated_snapshots = batches(Maker.mutated_doc)
shaped_snapshots = batches(Maker.shaped_doc)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),  # NaN and inf too
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


# --------------------------------------------------------------------------- #
# Equivalence on the real schema                                              #
# --------------------------------------------------------------------------- #
def test_example_snapshot_is_valid() -> None:
    doc = {
        "meta": {
            "run_id": "stress_12345",
            "timestamp": "2026-11-27T16:20:13.123456+00:00",
            "source": "stress_test_simulation",
        },
        "market_data": {
            "symbol": "STRESS_TEST",
            "price": 100.23,
            "volume": 5234,
            "timestamp": "2026-11-27T16:20:13.123456+00:00",
        },
        "system_state": {"status": "running", "memory_usage": 45.3},
    }
    for _unused in range(3):  # cold and warm memo
        assert assert_agrees(doc) is True
    broken = copy.deepcopy(doc)
    broken["market_data"]["volume"] = True
    assert assert_agrees(broken) is False


@SETTINGS
@given(valid_snapshots)
def test_valid_snapshots(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        assert assert_agrees(doc) is True


@SETTINGS
@given(mutated_snapshots)
def test_mutated_snapshots(docs: list[Any]) -> None:
    for doc in docs:
        assert_agrees(doc)


@SETTINGS
@given(shaped_snapshots)
def test_snapshot_shaped_arbitrary_values(docs: list[Any]) -> None:
    for doc in docs:
        assert_agrees(doc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json(doc: Any) -> None:
    assert_agrees(doc)


def test_the_generators_produce_both_outcomes() -> None:
    outcomes = [CONTRACT.is_valid(Maker(seed).mutated_doc()) for seed in range(300)]
    assert 0.05 < sum(outcomes) / len(outcomes) < 0.7
    assert all(CONTRACT.is_valid(Maker(seed).valid_doc()) for seed in range(300))


@pytest.mark.parametrize("how", range(N_NEAR_MISSES))
def test_timestamp_near_misses(how: int) -> None:
    for ts in ("2026-11-27T16:20:13.123456+00:00", "1999-01-01T00:00:00Z"):
        for section in ("meta", "market_data"):
            doc = {
                "meta": {"run_id": "r", "timestamp": ts, "source": "s"},
                "market_data": {"symbol": "S", "price": 1, "volume": 0, "timestamp": ts},
                "system_state": {"status": "ok", "memory_usage": 0},
            }
            doc[section]["timestamp"] = near_miss(ts, how)
            assert_agrees(doc)


def test_python_only_types_match_jsonschema() -> None:
    """Values orjson never produces still get jsonschema's answer."""
    base = {
        "meta": {"run_id": "r", "timestamp": "2026-01-01T00:00:00Z", "source": "s"},
        "market_data": {
            "symbol": "S",
            "price": 1,
            "volume": 0,
            "timestamp": "2026-01-01T00:00:00Z",
        },
        "system_state": {"status": "ok", "memory_usage": 0},
    }
    assert assert_agrees(base) is True

    class Mapping(dict):  # type: ignore[type-arg]
        pass

    cases: list[Any] = [
        OrderedDict(base),
        Mapping(base),
        tuple(base),
        dict(base, meta=OrderedDict(base["meta"])),
        dict(base, meta=Mapping(base["meta"], run_id=Text("r"))),
        dict(base, meta=dict(base["meta"], run_id=Text("bad id"))),
        dict(base, system_state={"status": "ok", "memory_usage": Decimal("50")}),
        dict(base, system_state={"status": "ok", "memory_usage": Decimal("100.5")}),
        dict(base, system_state={"status": "ok", "memory_usage": Fraction(1, 3)}),
        dict(base, market_data=dict(base["market_data"], volume=Decimal("3"))),
        dict(base, market_data=dict(base["market_data"], volume=Fraction(4, 1))),
        dict(base, market_data=dict(base["market_data"], volume=(1, 2))),
        dict(base, market_data=dict(base["market_data"], symbol=b"S")),
        {**base, 1: "x"},
    ]
    missing = defaultdict(int, base)
    del missing["system_state"]
    cases.append(missing)  # __missing__ must not hide an absent key
    for doc in cases:
        assert_agrees(doc)


# --------------------------------------------------------------------------- #
# The generators must be able to catch a wrong validator                      #
# --------------------------------------------------------------------------- #
def _edit(path: tuple[str, ...], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    node = schema
    for key in path:
        node = node[key]
    change(node)
    return schema


MUTANT_SCHEMAS = {
    "price minimum instead of exclusiveMinimum": _edit(
        ("properties", "market_data", "properties", "price"),
        lambda n: n.update(minimum=n.pop("exclusiveMinimum")),
    ),
    "memory exclusiveMaximum instead of maximum": _edit(
        ("properties", "system_state", "properties", "memory_usage"),
        lambda n: n.update(exclusiveMaximum=n.pop("maximum")),
    ),
    "volume number instead of integer": _edit(
        ("properties", "market_data", "properties", "volume"), lambda n: n.update(type="number")
    ),
    "timestamp \\Z instead of $ (trailing newline)": _edit(
        ("$defs", "timestamp"), lambda n: n.update(pattern=n["pattern"][:-1] + "\\Z")
    ),
    "timestamp without seconds 60": _edit(
        ("$defs", "timestamp"), lambda n: n.update(pattern=n["pattern"].replace("|60", ""))
    ),
    "meta allows extra keys": _edit(
        ("properties", "meta"), lambda n: n.pop("additionalProperties")
    ),
    "source not required": _edit(("properties", "meta"), lambda n: n["required"].remove("source")),
    "status allows 33 chars": _edit(
        ("properties", "system_state", "properties", "status"),
        lambda n: n.update(pattern="^[a-z][a-z0-9_]{0,32}$"),
    ),
    "run_id allows unicode digits": _edit(
        ("properties", "meta", "properties", "run_id"),
        lambda n: n.update(pattern="^[\\w.:-]{1,128}$"),
    ),
    "volume maximum 1e15 + 1": _edit(
        ("properties", "market_data", "properties", "volume"),
        lambda n: n.update(maximum=10**15 + 1),
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANT_SCHEMAS))
def test_generators_catch_a_wrong_validator(mutant: str) -> None:
    """Each of these subtly wrong validators is told apart within a few hundred documents."""
    wrong = compile_schema(MUTANT_SCHEMAS[mutant])
    for seed in range(3000):
        doc = Maker(seed).mutated_doc()
        if wrong(doc) != CONTRACT.is_valid(doc):
            return
    pytest.fail(f"no generated document tells {mutant!r} from the real schema")


# --------------------------------------------------------------------------- #
# Small hand-written schemas, one per keyword                                 #
# --------------------------------------------------------------------------- #
SMALL_INSTANCES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    5,
    1.0,
    2.0,
    2.5,
    -0.0,
    0.5,
    10**20,
    float(10**20),
    float("nan"),
    float("inf"),
    float("-inf"),
    Decimal("2"),
    Fraction(5, 2),
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "A",
    "2",
    "a\n",
    "\n",
    "xa",
    "😀😀",
    "é",
    "e\u0301",
    Text("ab"),
    [],
    [1],
    [1, 2],
    [True],
    [1.0, 2],
    (1, 2),
    {},
    {"a": 1},
    {"a": True},
    {"a": 1.0},
    {"a": "x"},
    {"b": 1},
    {"a": 1, "b": "x"},
    {"a": None, "b": None, "c": None},
    {1: "a"},
    OrderedDict(a=1),
]

SMALL_SCHEMAS: list[Any] = [
    True,
    False,
    {},
    *({"type": t} for t in ("object", "string", "number", "integer", "boolean", "null", "array")),
    {"type": ["string", "null"]},
    {"type": ["integer", "boolean"]},
    {"type": ["number", "string"], "minimum": 2, "maxLength": 2},
    {"type": []},
    {"properties": {"a": {"type": "integer"}}},
    {"properties": {"a": {"type": "integer"}, "b": False}},
    {"properties": {"a": True, "b": {"type": "string"}}},
    {"type": "object", "properties": {"a": {"minimum": 1}}},
    {"required": ["a"]},
    {"required": ["a", "b"]},
    {"required": ["c"], "properties": {"a": {}}},
    {"type": "object", "required": ["a"], "properties": {"a": {"type": "number"}}},
    {"additionalProperties": False},
    {"additionalProperties": True, "properties": {"a": {"type": "string"}}},
    {"additionalProperties": False, "properties": {"a": {}}},
    {"additionalProperties": False, "properties": {"a": {}, "b": {}}, "required": ["a"]},
    {"additionalProperties": False, "properties": {"a": {}}, "required": ["a", "b"]},
    {"type": "object", "additionalProperties": False, "required": ["a"], "properties": {"a": {}}},
    {"pattern": "^a"},
    {"pattern": "a"},
    {"pattern": "^a$"},
    {"pattern": "^[a-c]{1,2}$"},
    {"pattern": "^\\d$"},
    {"pattern": "^$"},
    {"type": "string", "pattern": "b"},
    {"minLength": 2},
    {"maxLength": 2},
    {"type": "string", "minLength": 1, "maxLength": 3},
    {"minLength": 2.5},
    {"minimum": 2},
    {"minimum": 2.0},
    {"maximum": 2},
    {"exclusiveMinimum": 2},
    {"exclusiveMaximum": 2},
    {"exclusiveMaximum": 1e20},
    {"maximum": 10**20},
    {"minimum": float("-inf")},
    {"type": "integer", "minimum": 0, "maximum": 2},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
    {"enum": [1, "a", None]},
    {"enum": [True]},
    {"enum": [1.0]},
    {"enum": ["ab", "abc"]},
    {"enum": [[1, 2], {"a": 1}]},
    {"enum": []},
    {"const": 0},
    {"const": False},
    {"const": "a"},
    {"const": [1, 2]},
    {"const": {"a": 1}},
    {"const": None},
    {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"},
    {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "minLength": 2},
    {"$defs": {"a~b/c d": {"const": 1}}, "$ref": "#/$defs/a~0b~1c%20d"},
    {
        "$defs": {"one": {"$ref": "#/$defs/two"}, "two": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/one"}},
    },
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/s.json",
        "title": "t",
        "description": "d",
        "$comment": "c",
        "examples": [1],
        "default": 1,
        "type": "integer",
    },
]


@pytest.mark.parametrize("schema", SMALL_SCHEMAS, ids=lambda s: json.dumps(s, default=str))
def test_small_schema_matches_jsonschema(schema: Any) -> None:
    contract = jsonschema.Draft202012Validator(schema)
    compiled = compile_schema(schema)
    for instance in SMALL_INSTANCES:
        for _unused in range(2):  # cold and warm memo
            assert compiled(instance) == contract.is_valid(instance), (schema, instance)


SMALL_BUILDS = [
    (
        schema,
        jsonschema.Draft202012Validator(schema),
        compile_schema(schema),
        compile_schema(schema, memo_size=1, memo_probe_interval=3),
    )
    for schema in SMALL_SCHEMAS
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | seeds.map(lambda seed: Maker(seed).json_value(2)))
def test_small_schemas_on_arbitrary_json(instance: Any) -> None:
    for schema, contract, compiled, tiny_memo in SMALL_BUILDS:
        expected = contract.is_valid(instance)
        assert compiled(instance) == expected, (schema, instance)
        assert tiny_memo(instance) == expected, (schema, instance)


def test_trailing_newline_and_code_points() -> None:
    compiled = compile_schema({"type": "string", "pattern": "^ab$", "maxLength": 3})
    assert compiled("ab\n") is True  # `$` before a final newline, as in jsonschema
    assert compiled("ab\n\n") is False
    assert compiled("ab\r") is False
    emoji = compile_schema({"type": "string", "minLength": 2, "maxLength": 2})
    assert emoji("😀😀") is True
    assert emoji("😀") is False


def test_nan_and_infinity_follow_jsonschema() -> None:
    nan, inf = float("nan"), float("inf")
    schema = {"type": "number", "exclusiveMinimum": 0, "maximum": 100}
    compiled = compile_schema(schema)
    contract = jsonschema.Draft202012Validator(schema)
    assert compiled(nan) is contract.is_valid(nan) is True  # NaN compares False
    assert compiled(inf) is contract.is_valid(inf) is False
    integer = compile_schema({"type": "integer"})
    assert integer(nan) is integer(inf) is False
    assert integer(3.0) is True
    assert integer(True) is False


def test_memo_never_changes_a_result() -> None:
    compiled = compile_schema(
        {"type": "string", "pattern": "^[a-z]+$"}, memo_size=3, memo_probe_interval=5
    )
    words = [f"w{'abc'[i % 3]}" for i in range(50)] + ["abc", "ab1", "abc\n", "abc"]
    for _unused in range(3):
        for word in words:
            assert compiled(word) == bool(__import__("re").search("^[a-z]+$", word))


def test_generated_source_is_kept() -> None:
    compiled = compile_schema(SCHEMA)
    source = compiled.__source__  # type: ignore[attr-defined]
    assert "def validate(instance):" in source
    assert "market_data" in source
    compile(source, "<check>", "exec")


# --------------------------------------------------------------------------- #
# Anything unsupported is refused, naming keyword and location                #
# --------------------------------------------------------------------------- #
UNSUPPORTED = [
    "items",
    "prefixItems",
    "contains",
    "minItems",
    "maxItems",
    "uniqueItems",
    "format",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "multipleOf",
    "contentEncoding",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$vocabulary",
    "deprecated",
    "x-custom",
    "Type",
]


@pytest.mark.parametrize("keyword", UNSUPPORTED)
def test_unsupported_keyword_is_refused(keyword: str) -> None:
    nested = {
        "type": "object",
        "properties": {"meta": {"type": "object", "properties": {"a/b": {keyword: 1}}}},
    }
    with pytest.raises(SchemaCompileError) as caught:
        compile_schema(nested)
    assert caught.value.keyword == keyword
    assert caught.value.pointer == f"/properties/meta/properties/a~1b/{keyword}"
    assert keyword in str(caught.value)
    assert caught.value.pointer in str(caught.value)


def test_unsupported_keyword_in_real_schema_is_refused() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["$defs"]["timestamp"]["format"] = "date-time"
    with pytest.raises(SchemaCompileError, match="format") as caught:
        compile_schema(schema)
    assert caught.value.pointer == "/$defs/timestamp/format"
    schema = copy.deepcopy(SCHEMA)
    schema["$defs"]["unused"] = {"type": "array", "items": {"type": "string"}}
    with pytest.raises(SchemaCompileError, match="items"):
        compile_schema(schema)


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"additionalProperties": {"type": "string"}}, "additionalProperties"),
        ({"$ref": "other.json#/x"}, "$ref"),
        ({"$ref": "#/$defs/missing"}, "$ref"),
        ({"$ref": "#anchor"}, "$ref"),
        ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "$ref"),
        ({"$defs": {"a": {"$ref": "#/%24defs/a"}}, "$ref": "#/$defs/a"}, "$ref"),
        ({"properties": {"a": {"$ref": "#"}}}, "$ref"),
        ({"properties": {"a": {"$id": "x", "type": "string"}}}, "$id"),
        ({"type": "float"}, "type"),
        ({"type": 3}, "type"),
        ({"pattern": "("}, "pattern"),
        ({"type": "number", "pattern": "["}, "pattern"),
        ({"minimum": "1"}, "minimum"),
        ({"maximum": True}, "maximum"),
        ({"minLength": -1}, "minLength"),
        ({"required": "a"}, "required"),
        ({"enum": "a"}, "enum"),
        ({"properties": []}, "properties"),
    ],
)
def test_malformed_or_unsupported_constructs_are_refused(schema: Any, keyword: str) -> None:
    with pytest.raises(SchemaCompileError) as caught:
        compile_schema(schema)
    assert caught.value.keyword == keyword


def test_non_schema_values_are_refused() -> None:
    for schema in (None, 1, "string", [{}]):
        with pytest.raises(SchemaCompileError):
            compile_schema(schema)
    with pytest.raises(ValueError, match="memo_size"):
        compile_schema({}, memo_size=-1)

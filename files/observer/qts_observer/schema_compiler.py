"""Compile a JSON Schema (draft 2020-12 subset) into one fast Python predicate.

``jsonschema`` is the contract and explains *why* a document is invalid, but it
is far too slow for the Observer's hot path.  :func:`compile_schema` generates
Python source for a single flat function from the same schema file and
``exec``s it.  The function returns exactly what
``jsonschema.Draft202012Validator(schema).is_valid(doc)`` returns, for the
keywords listed in :data:`SUPPORTED_KEYWORDS`; any other keyword raises
:class:`SchemaCompileError`, so the schema can never grow a constraint that the
compiled validator silently ignores.

Semantics mirrored from jsonschema (4.x):

* ``bool`` is neither a number nor an integer; ``integer`` also accepts floats
  with an integral value (``1.0``); ``number`` is any ``numbers.Number``.
* Keywords other than ``type`` only apply to instances of their own type
  (``minimum`` ignores strings, ``pattern`` ignores numbers...).
* Comparisons are plain Python comparisons, so NaN passes every bound and
  +/-inf fails the bounds it exceeds, exactly as in jsonschema.
* ``pattern`` uses ``re.search`` (so ``$`` also matches before a trailing
  newline); lengths count code points.
* ``enum``/``const`` use jsonschema's equality (``1 != True``, ``1 == 1.0``).

Standard library only: this module also runs on managed hosts.
"""

from __future__ import annotations

import builtins
import itertools
import linecache
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

__all__ = [
    "ANNOTATION_KEYWORDS",
    "SUPPORTED_KEYWORDS",
    "SchemaCompileError",
    "compile_schema",
]

#: Keywords that never affect validity and are skipped.
ANNOTATION_KEYWORDS = frozenset(
    {"$schema", "$id", "title", "description", "$comment", "$defs", "examples", "default"}
)

#: Keywords the compiler turns into checks.
SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "enum",
        "const",
        "$ref",
    }
)

_TYPES = ("object", "string", "number", "integer", "boolean", "null", "array")
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# Failing comparison for each bound keyword, written as jsonschema writes it.
_NUMBER_FAIL_OP = {
    "minimum": "<",
    "maximum": ">",
    "exclusiveMinimum": "<=",
    "exclusiveMaximum": ">=",
}
_STRING_KEYWORDS = ("minLength", "maxLength", "pattern")
_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties")

#: Default bound of each pattern's memo of strings already known to match.
DEFAULT_MEMO_SIZE = 4096
#: Strings longer than this are never memoized (bounds the memo's memory).
DEFAULT_MEMO_MAX_LEN = 256
_serial = itertools.count(1)
#: Calls between two re-probes of switched-off memos.
DEFAULT_MEMO_PROBE_INTERVAL = 1 << 20


class SchemaCompileError(ValueError):
    """The schema uses something the compiler cannot reproduce exactly.

    ``keyword`` is the offending keyword (or ``None``) and ``pointer`` the JSON
    pointer of the offending location in the schema.
    """

    def __init__(self, message: str, pointer: str, keyword: str | None = None) -> None:
        super().__init__(f"{message} (at #{pointer})")
        self.pointer = pointer
        self.keyword = keyword


# --------------------------------------------------------------------------- #
# jsonschema's equality (jsonschema._utils.equal), reimplemented with stdlib.  #
# Only used by enum/const on instances that are not exact ``str``.             #
# --------------------------------------------------------------------------- #
_TRUE = object()
_FALSE = object()


def _unbool(element: Any) -> Any:
    if element is True:
        return _TRUE
    if element is False:
        return _FALSE
    return element


def _equal(one: Any, two: Any) -> bool:
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        if len(one) != len(two):
            return False
        return all(_equal(i, j) for i, j in zip(one, two))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        if len(one) != len(two):
            return False
        return all(key in two and _equal(value, two[key]) for key, value in one.items())
    return bool(_unbool(one) == _unbool(two))


def _in_enum(instance: Any, values: tuple[Any, ...]) -> bool:
    return any(_equal(each, instance) for each in values)


# --------------------------------------------------------------------------- #
# Code generation                                                              #
# --------------------------------------------------------------------------- #
def _escape_pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_condition(type_name: str, var: str) -> str:
    """A Python expression true iff jsonschema's ``is_type(var, type_name)``."""
    if type_name == "object":
        return f"isinstance({var}, dict)"
    if type_name == "string":
        return f"isinstance({var}, str)"
    if type_name == "array":
        return f"isinstance({var}, list)"
    if type_name == "null":
        return f"{var} is None"
    if type_name == "boolean":
        return f"({var} is True or {var} is False)"
    if type_name == "number":
        return (
            f"(type({var}) is float or type({var}) is int"
            f" or (isinstance({var}, _Number) and not isinstance({var}, bool)))"
        )
    if type_name == "integer":
        return (
            f"(type({var}) is int or (isinstance({var}, int) and not isinstance({var}, bool))"
            f" or (isinstance({var}, float) and {var}.is_integer()))"
        )
    raise AssertionError(type_name)  # pragma: no cover - guarded by the caller


# The name the generated code gives an absent optional property (bound by the factory).
_MISSING = "_MISSING"


def _object_keywords(schema: dict, pointer: str) -> tuple[dict, list, bool]:
    """properties, required and additionalProperties, refused unless supported."""
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(k, str) for k in properties):
        raise SchemaCompileError("properties must be an object", pointer, "properties")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SchemaCompileError("required must be an array of strings", pointer, "required")
    additional = schema.get("additionalProperties", True)
    if additional is not True and additional is not False:
        raise SchemaCompileError(
            "additionalProperties: only true or false are supported",
            f"{pointer}/additionalProperties",
            "additionalProperties",
        )
    return properties, required, additional


@dataclass(frozen=True)
class _ObjectShape:
    """What the object checks of one schema emit from: which properties are fetched (the
    required ones it defines), read if present (the optional ones), or only required."""

    required: list[str]
    required_set: set[str]
    additional: bool
    fetched: list[str]
    optional: list[str]
    required_only: list[str]
    names: dict[str, str]  # property -> its variable in the generated code
    allowed: str  # the constant holding the defined property names

    @classmethod
    def of(
        cls, properties: dict, required: list[str], additional: bool, compiler: Any
    ) -> _ObjectShape:
        required_set = set(required)
        return cls(
            required=required,
            required_set=required_set,
            additional=additional,
            fetched=[name for name in properties if name in required_set],
            optional=[name for name in properties if name not in required_set],
            required_only=[name for name in dict.fromkeys(required) if name not in properties],
            names={name: compiler.new_var() for name in properties},
            allowed=compiler.const("p", frozenset(properties)),
        )


class _Generator:
    def __init__(self, root: Any, memo_size: int, memo_max_len: int, probe: int) -> None:
        self.root = root
        self.memo_size = memo_size
        self.memo_max_len = memo_max_len
        self.probe = probe
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._patterns: dict[str, int] = {}
        #: Number of places each pattern is checked at (index: pattern index).
        self.sites: list[int] = []
        self._counter = 0

    # -- helpers -----------------------------------------------------------
    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def new_var(self) -> str:
        self._counter += 1
        return f"v{self._counter}"

    def const(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.consts)}"
        self.consts[name] = value
        return name

    def literal(self, value: Any) -> str:
        """Source text for a number; non-finite floats become closure constants."""
        if isinstance(value, float) and not math.isfinite(value):
            return self.const("k", value)
        return repr(value)

    def pattern(self, regex: str, pointer: str) -> int:
        """Index of the compiled ``regex`` (shared by every site using it)."""
        if regex not in self._patterns:
            try:
                search = re.compile(regex).search
            except re.error as exc:
                raise SchemaCompileError(
                    f"invalid pattern {regex!r}: {exc}", pointer, "pattern"
                ) from exc
            index = len(self._patterns)
            self._patterns[regex] = index
            self.consts[f"s{index}"] = search
            self.sites.append(0)
        return self._patterns[regex]

    def memo_check(self, level: int, var: str, index: int) -> None:
        """Pattern check through the adaptive memo of pattern ``index``.

        ``m{i}`` holds exact strings already known to match; ``a{i}`` says
        whether the memo is in use and ``c{i}`` is the call count when it was
        last emptied.  When the memo is full, it is emptied and kept in use
        only if it filled slowly enough to have paid for itself (enough calls
        per miss, i.e. enough hits); otherwise it is switched off until the
        next re-probe (every ``memo_probe_interval`` calls).
        """
        i = index
        self.emit(level, f"if not (a{i} and {var} in m{i}):")
        self.emit(level + 1, f"if s{i}({var}) is None:")
        self.emit(level + 2, "return False")
        self.emit(level + 1, f"if a{i} and len({var}) <= {self.memo_max_len}:")
        self.emit(level + 2, f"if len(m{i}) >= {self.memo_size}:")
        self.emit(level + 3, f"m{i}.clear()")
        self.emit(level + 3, f"a{i} = _n - c{i} >= t{i}")
        self.emit(level + 3, f"c{i} = _n")
        self.emit(level + 2, f"m{i}[{var}] = None")

    def resolve(self, ref: Any, pointer: str) -> tuple[Any, str]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaCompileError(
                f"only local '#/...' $ref are supported, got {ref!r}", pointer, "$ref"
            )
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            raise SchemaCompileError(f"anchors are not supported: {ref!r}", pointer, "$ref")
        target: Any = self.root
        canonical = "#"
        for raw in fragment.split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise SchemaCompileError(f"unresolvable $ref {ref!r}", pointer, "$ref")
            canonical += "/" + _escape_pointer_token(token)
        return target, canonical

    # -- schema nodes --------------------------------------------------------
    def node(self, schema: Any, var: str, pointer: str, indent: int, refs: tuple[str, ...]) -> None:
        """Emit code that returns False unless ``var`` is valid against ``schema``."""
        if schema is True:
            return
        if schema is False:
            self.emit(indent, "return False")
            return
        if not isinstance(schema, dict):
            raise SchemaCompileError(
                f"a schema must be an object or a boolean, got {type(schema).__name__}", pointer
            )
        for keyword in schema:
            if keyword in SUPPORTED_KEYWORDS:
                continue
            if keyword in ANNOTATION_KEYWORDS:
                if keyword == "$id" and pointer:
                    raise SchemaCompileError(
                        "$id is only supported at the root (it would change $ref resolution)",
                        f"{pointer}/$id",
                        keyword,
                    )
                continue
            raise SchemaCompileError(
                f"unsupported keyword {keyword!r}",
                f"{pointer}/{_escape_pointer_token(str(keyword))}",
                str(keyword),
            )

        if "$ref" in schema:
            target, target_pointer = self.resolve(schema["$ref"], f"{pointer}/$ref")
            if target_pointer in refs:
                raise SchemaCompileError(
                    f"recursive $ref {schema['$ref']!r} cannot be inlined",
                    f"{pointer}/$ref",
                    "$ref",
                )
            self.node(target, var, target_pointer[1:], indent, (*refs, target_pointer))

        known = self.type_check(schema, var, pointer, indent)
        self.enum_checks(schema, var, pointer, indent)
        self.number_checks(schema, var, pointer, indent, known)
        self.string_checks(schema, var, pointer, indent, known)
        self.object_checks(
            schema=schema, var=var, pointer=pointer, indent=indent, known=known, refs=refs
        )

    def type_check(self, schema: dict, var: str, pointer: str, indent: int) -> set[str] | None:
        """Emit the ``type`` check; return the possible types afterwards (None: any)."""
        if "type" not in schema:
            return None
        types = schema["type"]
        names = [types] if isinstance(types, str) else types
        if not isinstance(names, list) or not all(isinstance(t, str) for t in names):
            raise SchemaCompileError("type must be a string or a list of strings", pointer, "type")
        for name in names:
            if name not in _TYPES:
                raise SchemaCompileError(f"unknown type {name!r}", f"{pointer}/type", "type")
        known = set(names)
        # A single object/string type with its own keywords is checked together
        # with those keywords (fast path on the exact built-in type).
        if names == ["object"] and any(k in schema for k in _OBJECT_KEYWORDS):
            return known
        if names == ["string"] and any(k in schema for k in _STRING_KEYWORDS):
            return known
        if not names:
            self.emit(indent, "return False")
            return known
        cond = " or ".join(_type_condition(name, var) for name in dict.fromkeys(names))
        self.emit(indent, f"if not ({cond}):")
        self.emit(indent + 1, "return False")
        return known

    def enum_checks(self, schema: dict, var: str, pointer: str, indent: int) -> None:
        for keyword in ("enum", "const"):
            if keyword not in schema:
                continue
            if keyword == "enum":
                values = schema["enum"]
                if not isinstance(values, list):
                    raise SchemaCompileError("enum must be an array", pointer, "enum")
            else:
                values = [schema["const"]]
            strings = frozenset(v for v in values if isinstance(v, str))
            str_set = self.const("e", strings)
            all_values = self.const("e", tuple(values))
            self.emit(
                indent,
                f"if not ({var} in {str_set} if type({var}) is str"
                f" else _in_enum({var}, {all_values})):",
            )
            self.emit(indent + 1, "return False")

    def number_checks(
        self, schema: dict, var: str, pointer: str, indent: int, known: set[str] | None
    ) -> None:
        present = [k for k in _NUMBER_KEYWORDS if k in schema]
        if not present:
            return
        for keyword in present:
            if not _is_number(schema[keyword]):
                raise SchemaCompileError(f"{keyword} must be a number", pointer, keyword)
        if known is not None and not known & {"number", "integer"}:
            return  # never applies
        if known is None or known - {"number", "integer"}:
            self.emit(indent, f"if {_type_condition('number', var)}:")
            indent += 1
        for keyword in present:
            op = _NUMBER_FAIL_OP[keyword]
            self.emit(indent, f"if {var} {op} {self.literal(schema[keyword])}:")
            self.emit(indent + 1, "return False")

    def string_checks(
        self, schema: dict, var: str, pointer: str, indent: int, known: set[str] | None
    ) -> None:
        present = [k for k in _STRING_KEYWORDS if k in schema]
        if not present:
            return
        for keyword in ("minLength", "maxLength"):
            if keyword in schema:
                value = schema[keyword]
                if not (_is_number(value) and value >= 0):
                    raise SchemaCompileError(
                        f"{keyword} must be a non-negative number", pointer, keyword
                    )
        if "pattern" in schema and not isinstance(schema["pattern"], str):
            raise SchemaCompileError("pattern must be a string", pointer, "pattern")
        if known is not None and "string" not in known:
            if "pattern" in schema:  # never applies, but must still be a valid regex
                self.pattern(schema["pattern"], f"{pointer}/pattern")
            return
        exclusive = known == {"string"}  # type check not emitted yet: do it here

        def body(level: int, memo: bool) -> None:
            if "minLength" in schema:
                self.emit(level, f"if len({var}) < {self.literal(schema['minLength'])}:")
                self.emit(level + 1, "return False")
            if "maxLength" in schema:
                self.emit(level, f"if len({var}) > {self.literal(schema['maxLength'])}:")
                self.emit(level + 1, "return False")
            if "pattern" in schema:
                index = self.pattern(schema["pattern"], f"{pointer}/pattern")
                search = f"s{index}"
                if memo and self.memo_size > 0:
                    self.sites[index] += 1
                    self.memo_check(level, var, index)
                else:
                    self.emit(level, f"if {search}({var}) is None:")
                    self.emit(level + 1, "return False")

        # Memoize only exact ``str``: a subclass may redefine hashing/equality.
        self.emit(indent, f"if type({var}) is str:")
        body(indent + 1, memo=True)
        self.emit(indent, f"elif isinstance({var}, str):")
        body(indent + 1, memo=False)
        if exclusive:
            self.emit(indent, "else:")
            self.emit(indent + 1, "return False")

    def object_checks(
        self,
        *,
        schema: dict,
        var: str,
        pointer: str,
        indent: int,
        known: set[str] | None,
        refs: tuple[str, ...],
    ) -> None:
        if not any(k in schema for k in _OBJECT_KEYWORDS):
            return
        properties, required, additional = _object_keywords(schema, pointer)
        if known is not None and "object" not in known:
            # Never applies, but still reject unsupported keywords underneath.
            for name, sub in properties.items():
                sub_pointer = f"{pointer}/properties/{_escape_pointer_token(name)}"
                self._check_only(sub, sub_pointer, refs)
            return
        exclusive = known == {"object"}
        if not exclusive:
            self.emit(indent, f"if isinstance({var}, dict):")
            indent += 1
        shape = _ObjectShape.of(properties, required, additional, self)
        self._object_fast_path(shape, var, indent)
        self._object_slow_path(shape, var, indent)
        if exclusive:
            self.emit(indent, "else:")
            self.emit(indent + 1, "return False")

        for name, sub in properties.items():
            sub_pointer = f"{pointer}/properties/{_escape_pointer_token(name)}"
            if name in shape.required_set:
                self.node(sub, shape.names[name], sub_pointer, indent, refs)
            else:
                start = len(self.lines)
                self.emit(indent, f"if {shape.names[name]} is not {_MISSING}:")
                self.node(sub, shape.names[name], sub_pointer, indent + 1, refs)
                if len(self.lines) == start + 1:
                    del self.lines[start:]  # nothing to check underneath

    def _object_fast_path(self, shape: _ObjectShape, var: str, indent: int) -> None:
        """An exact dict: C-level checks."""
        self.emit(indent, f"if type({var}) is dict:")
        fast = indent + 1
        if shape.additional is False:
            if shape.required_set == set(shape.names):
                self.emit(fast, f"if len({var}) != {len(shape.names)}:")
            else:
                self.emit(fast, f"if not ({var}.keys() <= {shape.allowed}):")
            self.emit(fast + 1, "return False")
        for name in shape.required_only:
            self.emit(fast, f"if {name!r} not in {var}:")
            self.emit(fast + 1, "return False")
        if shape.fetched:
            self.emit(fast, "try:")
            for name in shape.fetched:
                self.emit(fast + 1, f"{shape.names[name]} = {var}[{name!r}]")
            self.emit(fast, "except KeyError:")
            self.emit(fast + 1, "return False")
        for name in shape.optional:
            self.emit(fast, f"{shape.names[name]} = {var}.get({name!r}, {_MISSING})")
        if not (
            shape.additional is False or shape.required_only or shape.fetched or shape.optional
        ):
            self.emit(fast, "pass")

    def _object_slow_path(self, shape: _ObjectShape, var: str, indent: int) -> None:
        """Dict subclasses, step by step like jsonschema."""
        self.emit(indent, f"elif isinstance({var}, dict):")
        slow = indent + 1
        if shape.additional is False:
            self.emit(slow, f"for _k in {var}:")
            self.emit(slow + 1, f"if _k not in {shape.allowed}:")
            self.emit(slow + 2, "return False")
        for name in dict.fromkeys(shape.required):
            self.emit(slow, f"if {name!r} not in {var}:")
            self.emit(slow + 1, "return False")
        for name in shape.fetched:
            self.emit(slow, f"{shape.names[name]} = {var}[{name!r}]")
        for name in shape.optional:
            self.emit(
                slow, f"{shape.names[name]} = {var}[{name!r}] if {name!r} in {var} else {_MISSING}"
            )
        self.emit(slow, "pass")

    def source(self, name: str) -> str:
        """The whole module: a factory binding constants and memo state."""
        memos = [i for i, sites in enumerate(self.sites) if sites]
        head = [f"def _factory({', '.join(self.consts)}):"]
        state: list[str] = []
        if memos:
            # Keep memo i while it gets at least ~1 hit per 2 misses: it took
            # at least 1.5 * memo_size / sites calls to collect memo_size misses.
            head.append("    _n = 0")
            head.append(f"    _probe = {self.probe}")
            for i in memos:
                threshold = -(-3 * self.memo_size // (2 * self.sites[i]))
                head.append(f"    m{i} = {{}}")
                head.append(f"    a{i} = True")
                head.append(f"    c{i} = 0")
                head.append(f"    t{i} = {threshold}")
                state += [f"a{i}", f"c{i}"]
        head.append(f"    def {name}(instance):")
        if memos:
            head.append(f"        nonlocal _n, _probe, {', '.join(state)}")
            head.append("        _n += 1")
            head.append("        if _n >= _probe:")
            head.append(f"            _probe = _n + {self.probe}")
            for i in memos:
                head.append(f"            if not a{i}:")
                head.append(f"                a{i} = True")
                head.append(f"                c{i} = _n")
                head.append(f"                m{i}.clear()")
        tail = ["        return True", f"    return {name}", ""]
        return "\n".join([*head, *self.lines, *tail])

    def _check_only(self, schema: Any, pointer: str, refs: tuple[str, ...]) -> None:
        """Run the compile-time checks of ``schema`` and throw the code away."""
        saved, sites = len(self.lines), list(self.sites)
        self.node(schema, "_", pointer, 0, refs)
        del self.lines[saved:]
        self.sites[: len(sites)] = sites
        self.sites[len(sites) :] = [0] * (len(self.sites) - len(sites))


def compile_schema(
    schema: Any,
    *,
    memo_size: int = DEFAULT_MEMO_SIZE,
    memo_max_len: int = DEFAULT_MEMO_MAX_LEN,
    memo_probe_interval: int = DEFAULT_MEMO_PROBE_INTERVAL,
) -> Callable[[Any], bool]:
    """Compile ``schema`` into ``f(instance) -> bool``.

    ``f(doc)`` equals ``jsonschema.Draft202012Validator(schema).is_valid(doc)``.
    The function is one flat piece of generated code: no call per field.

    Each distinct ``pattern`` gets a memo of up to ``memo_size`` exact ``str``
    values (at most ``memo_max_len`` code points) already known to match.  The
    memo is adaptive: when full it is emptied, and switched off if it missed
    more often than about once per two checks (unique values such as run ids),
    then retried every ``memo_probe_interval`` calls.  ``memo_size=0`` turns
    memoization off.  The memo only ever skips a regex for a string that
    already matched it, so it never changes a result.

    The generated source is available as ``f.__source__`` (and in tracebacks).

    Raises :class:`SchemaCompileError` for any keyword outside
    :data:`SUPPORTED_KEYWORDS` and :data:`ANNOTATION_KEYWORDS`, for malformed
    keyword values, and for ``$ref`` it cannot inline.
    """
    for label, value in (
        ("memo_size", memo_size),
        ("memo_max_len", memo_max_len),
        ("memo_probe_interval", memo_probe_interval),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (0 if label == "memo_size" else 1)
        ):
            raise ValueError(f"bad {label}: {value!r}")
    gen = _Generator(schema, memo_size, memo_max_len, memo_probe_interval)
    gen.node(schema, "instance", "", 2, ("#",))
    # Unreferenced $defs cannot affect validity, but keep the schema file
    # within the supported subset everywhere.
    if isinstance(schema, dict) and isinstance(schema.get("$defs"), dict):
        for def_name, sub in schema["$defs"].items():
            target = f"#/$defs/{_escape_pointer_token(def_name)}"
            gen._check_only(sub, target[1:], ("#", target))
    source = gen.source("validate")
    filename = f"<qts_observer.schema_compiler:validate:{next(_serial)}>"
    namespace: dict[str, Any] = {
        "__builtins__": builtins,
        "_Number": numbers.Number,
        "_MISSING": object(),
        "_in_enum": _in_enum,
    }
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - generated from the schema
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    function = namespace["_factory"](**gen.consts)
    function.__source__ = source
    return function

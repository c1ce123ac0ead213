"""Turn pydantic ``ValidationError``s into located, readable problems.

Pydantic reports each error with a ``loc`` path that mixes data keys with its own labels:
a discriminated union inserts the tag (``('fields', 'depth', 'decimal', 'scale')``), a plain
union inserts a member label (``'function-after[_one_language(), Labels]'``, ``'str'``) and a
dict key that fails validation ends in ``'[key]'``. :func:`walk` follows ``loc`` through the
type annotations so that only data keys remain; the labels never reach a message.

When every member of a plain union fails, pydantic reports each member's errors. The
member whose errors go deepest is what the author meant (``label: {es: 1}`` is a broken
mapping, not a broken string), so only its errors are kept; when no member gets past the
type check, one ``expected a mapping or a string, got 5`` problem is reported instead.

Example::

    try:
        ModuleFile.model_validate(doc.value)
    except ValidationError as exc:
        problems.extend(problems_from(exc, ModuleFile, doc))
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .errors import Problem, did_you_mean, expected_one_of
from .source import Document, dotted
from .spec import (
    ENTITY_REF_PATTERN,
    ENUM_CODE_PATTERN,
    FETCH_PATTERN,
    NAME_HINT,
    NAME_PATTERN,
    STATE_COLOR_PATTERN,
    STATE_COLORS,
    FieldBase,
)

#: pattern -> (what a matching string is, hint); see :func:`describe_pattern`.
_PATTERNS: dict[str, tuple[str, str]] = {
    NAME_PATTERN: ("a valid name", NAME_HINT),
    ENUM_CODE_PATTERN: ("a valid enum code",
                        "codes start with a letter or digit, then letters, digits, '_', '.' "
                        "or '-' (no spaces)"),
    ENTITY_REF_PATTERN: ("a valid entity reference",
                         "write 'entity' for an entity of the same module or 'module.entity'"),
    FETCH_PATTERN: ("a valid fetch_from reference",
                    "write '<link field>.<field of the linked entity>', e.g. 'well.name'"),
    STATE_COLOR_PATTERN: ("a state color", "use one of " + ", ".join(STATE_COLORS)
                          + ", or '#rrggbb'"),
}


def describe_pattern(pattern: str, what: str, hint: str) -> None:
    """Name a string pattern so its mismatches read ``'x' is not <what>`` plus ``hint``."""
    _PATTERNS[pattern] = (what, hint)


_EXPECTED = {
    "model_type": "a mapping", "dict_type": "a mapping", "model_attributes_type": "a mapping",
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "decimal_type": "a number", "bool_type": "true or false", "list_type": "a list",
    "tuple_type": "a list", "set_type": "a list", "date_type": "a date (YYYY-MM-DD)",
    "datetime_type": "a date and time (ISO 8601)", "time_type": "a time (HH:MM:SS)",
    "none_required": "nothing (null)",
}


# --------------------------------------------------------------------------- walking loc


@dataclass
class Walk:
    """Where one pydantic error points: data path, union choices made, types at the end."""

    data_path: list[Any]
    #: (data path of the union, index of the member pydantic tried) for each plain union
    choices: list[tuple[tuple[Any, ...], int]] = field(default_factory=list)
    #: candidate annotations at the end of the path
    end: list[Any] = field(default_factory=list)
    is_key: bool = False


def _norm(tp: Any) -> tuple[Any, str | None]:
    """Strip ``Annotated`` wrappers; return the type and a discriminator if one is declared."""
    disc: str | None = None
    while get_origin(tp) is typing.Annotated:
        args = get_args(tp)
        for meta in args[1:]:
            d = getattr(meta, "discriminator", None)
            if isinstance(d, str):
                disc = d
        tp = args[0]
    return tp, disc


def _union_members(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (Union, types.UnionType):
        return [a for a in get_args(tp) if a is not type(None)]
    return None


def _tags_of(member: Any, disc: str) -> tuple[Any, ...]:
    m, _ = _norm(member)
    if isinstance(m, type) and issubclass(m, BaseModel):
        info = m.model_fields.get(disc)
        if info is not None and get_origin(info.annotation) is Literal:
            return get_args(info.annotation)
    return ()


def _model_field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key == name or (info.alias is not None and key == info.alias):
            return info
    return None


def _field_type(info: FieldInfo) -> Any:
    tp = info.annotation
    if isinstance(info.discriminator, str):
        return typing.Annotated[tp, FieldInfo(discriminator=info.discriminator)]
    return tp


class _Members:
    """Maps pydantic's union member labels to member indexes, in order of first appearance.

    Pydantic lists the errors of a failing union member by member, in declaration order,
    so the n-th distinct label seen at a union position is the n-th member.
    """

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], list[str]] = {}

    def index(self, upath: tuple[Any, ...], members: list[Any], label: str) -> int:
        labels = self.seen.setdefault(upath, [])
        if label not in labels:
            labels.append(label)
        for i, m in enumerate(members):  # a model's class name is in its label: exact
            tp = _norm(m)[0]
            if isinstance(tp, type) and issubclass(tp, BaseModel) and re.search(
                    rf"(^|[\[, ]){re.escape(tp.__name__)}\]?$", label):
                return i
        return min(labels.index(label), len(members) - 1)


def walk(root: Any, loc: Sequence[Any], members: _Members | None = None) -> Walk:
    """Follow pydantic's ``loc`` from the annotation ``root`` (a model class or any type)."""
    members = members or _Members()
    out = Walk([])
    cur: Any = root
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "[key]":
            out.is_key = True
            i += 1
            continue
        tp, disc = _norm(cur)
        union = _union_members(tp)
        if union is not None and len(union) == 1 and disc is None:
            cur = union[0]
            continue
        if union is not None:
            if disc is not None:  # the tag pydantic inserted
                tagged = [m for m in union if part in _tags_of(m, disc)]
                cur = tagged[0] if tagged else Any
            else:  # a member label
                idx = members.index(tuple(out.data_path), union, str(part))
                out.choices.append((tuple(out.data_path), idx))
                cur = union[idx]
            i += 1
            continue
        out.data_path.append(part)
        i += 1
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = _model_field(tp, part)
            cur = _field_type(info) if info is not None else Any
        elif get_origin(tp) is dict:
            cur = get_args(tp)[1]
        elif get_origin(tp) in (list, tuple, set, frozenset, Sequence):
            args = get_args(tp)
            cur = args[0] if args else Any
        else:
            cur = Any
    tp, disc = _norm(cur)
    union = _union_members(tp)
    out.end = [tp] if union is None else union
    return out


def _models(candidates: list[Any]) -> list[type[BaseModel]]:
    out = []
    for c in candidates:
        c = _norm(c)[0]
        if isinstance(c, type) and issubclass(c, BaseModel):
            out.append(c)
    return out


# --------------------------------------------------------------------------- messages


def _describe(value: Any) -> str:
    """A value as a consultant would recognise it from the YAML."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    return repr(value)


def _snake(value: str) -> str | None:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", value.strip())
    s = re.sub(r"[^a-zA-Z0-9]+", "_", s).strip("_").lower()
    if s and not s[0].isalpha():
        s = "n_" + s
    return s[:63] if s and s != value else None


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _message(err: Any, w: Walk, doc: Document, path: list[Any]) -> tuple[str, str | None]:
    """Message and hint for one (non-union) error."""
    etype: str = err["type"]
    value = err.get("input")
    ctx: dict[str, Any] = err.get("ctx") or {}
    hint: str | None = None
    if etype == "string_pattern_mismatch":
        what, pattern_hint = _PATTERNS.get(ctx.get("pattern", ""), ("", ""))
        if not what:
            return f"{_describe(value)} does not match the pattern '{ctx.get('pattern')}'", None
        if ctx.get("pattern") == NAME_PATTERN and isinstance(value, str):
            suggestion = _snake(value)
            pattern_hint += f"; try '{suggestion}'" if suggestion else ""
        return f"{_describe(value)} is not {what}", pattern_hint
    if etype == "string_too_long":
        n = ctx.get("max_length")
        long_hint = ("PostgreSQL truncates identifiers at 63 characters; choose a shorter name"
                     if n == 63 else None)
        size = f"{len(value)} characters long" if isinstance(value, str) else "too long"
        return f"{_describe(value)} is {size} (limit {n})", long_hint
    if etype == "string_too_short":
        n = ctx.get("min_length")
        return ("must not be empty" if n == 1 else
                f"must be at least {_plural(n, 'character')} long"), None
    if etype == "too_short":
        return (f"needs at least {_plural(ctx.get('min_length'), 'item')}, "
                f"got {ctx.get('actual_length')}"), None
    if etype == "too_long":
        return (f"allows at most {_plural(ctx.get('max_length'), 'item')}, "
                f"got {ctx.get('actual_length')}"), None
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("greater than", "gt"), "less_than": ("less than", "lt")}
    if etype in bounds:
        words, key = bounds[etype]
        return f"must be {words} {ctx.get(key)}, got {_describe(value)}", None
    if etype == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"unknown value {_describe(value)}", (
            expected_one_of(str(value), expected) if expected else None)
    if etype in ("value_error", "assertion_error"):
        error = ctx.get("error")
        return (str(error) if error is not None else str(err["msg"])), None
    if etype in _EXPECTED:
        if etype == "string_type" and isinstance(value, (int, float, bool, dt.date)):
            hint = "put the value in quotes to make it text"
        elif etype == "list_type" and isinstance(value, (str, int, float)):
            hint = f"write a list, e.g. [{value}]"
        elif etype == "dict_type" and value is None:
            hint = "write {} for an empty mapping"
        elif isinstance(value, str) and etype in ("int_type", "float_type", "decimal_type",
                                                  "bool_type", "date_type", "datetime_type"):
            hint = "write the value without quotes"
        return f"expected {_EXPECTED[etype]}, got {_describe(value)}", hint
    text = str(err["msg"])
    text = re.sub(r"^Input should be", "expected", text)
    text = re.sub(r"^Value error, ", "", text)
    return f"{text[0].lower()}{text[1:]}, got {_describe(value)}", None


def _problem(err: Any, w: Walk, root: Any, doc: Document, base: Sequence[Any]) -> Problem:
    path = list(base) + w.data_path
    etype: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    if etype == "extra_forbidden":
        parent = walk(root, _drop_last_data(err["loc"])).end
        models = _models(parent)
        allowed = sorted({info.alias or name for m in models
                          for name, info in m.model_fields.items()})
        key = path[-1] if path else ""
        hint = expected_one_of(str(key), allowed) if allowed else None
        return Problem(doc.where_key(path), dotted(path), f"unknown key '{key}'", hint)
    if etype == "missing":
        parent_path = path[:-1]
        key = path[-1] if path else ""
        models = _models(walk(root, _drop_last_data(err["loc"])).end)
        return Problem(doc.where_key(parent_path), dotted(parent_path),
                       f"missing required key '{key}'", _example_hint(models, key))
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        disc = str(ctx.get("discriminator", "")).strip("'")
        tags = sorted({str(t) for m in w.end for t in _tags_of(m, disc)}) or [
            t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip(" '")]
        is_field = any(issubclass(m, FieldBase) for m in _models(w.end))
        what = "field type" if is_field and disc == "type" else f"'{disc}'"
        if etype == "union_tag_not_found":
            return Problem(doc.where_key(path), dotted(path), f"missing required key '{disc}'",
                           "expected one of " + ", ".join(tags))
        tag_path = path + [disc]
        value = _value_at(doc, tag_path)
        msg = (f"unknown {what} '{value}'" if isinstance(value, str)
               else f"expected the name of a {what}, got {_describe(value)}")
        return Problem(doc.where(tag_path), dotted(tag_path), msg,
                       expected_one_of(str(value), tags))
    msg, hint = _message(err, w, doc, path)
    if hint is None and etype in _EXPECTED and path and isinstance(path[-1], str) \
            and not w.is_key:
        example = _example_hint(_models(walk(root, _drop_last_data(err["loc"])).end), path[-1])
        hint = example.replace("add it, e.g.", "write it like") if example else None
    where = doc.where_key(path) if w.is_key else doc.where(path)
    if w.is_key:
        msg = msg.replace("'[key]'", "key")
    return Problem(where, dotted(path), msg, hint)


def _inline(value: Any) -> str:
    """A value written as YAML flow style, for hints."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _example_hint(models: list[type[BaseModel]], key: Any) -> str | None:
    """``add it, e.g. 'to: pad'`` from the field's declared examples."""
    for m in models:
        info = _model_field(m, key)
        if info is not None and info.examples:
            return f"add it, e.g. '{key}: {_inline(info.examples[0])}'"
    return None


def _drop_last_data(loc: Sequence[Any]) -> list[Any]:
    return list(loc)[:-1]


def _value_at(doc: Document, path: Sequence[Any]) -> Any:
    node = doc.value
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


# --------------------------------------------------------------------------- unions


@dataclass
class _Err:
    err: Any
    walk: Walk
    depth: int = 0  # how many of walk.choices are already decided


def _is_mismatch(e: _Err, upath: tuple[Any, ...]) -> bool:
    """The member failed on the value's basic type, at the union itself."""
    return (len(e.walk.choices) == e.depth + 1 and tuple(e.walk.data_path) == upath
            and e.err["type"] in _EXPECTED)


def _prune(errs: list[_Err], doc: Document, base: Sequence[Any],
           out: list[Problem], root: Any) -> list[_Err]:
    """Keep the errors of the union member the author meant; summarise pure type mismatches."""
    kept: list[_Err] = []
    groups: dict[tuple[Any, ...], list[_Err]] = {}
    for e in errs:
        if len(e.walk.choices) > e.depth:
            groups.setdefault(e.walk.choices[e.depth][0], []).append(e)
        else:
            kept.append(e)
    for upath, members_errs in groups.items():
        by_member: dict[int, list[_Err]] = {}
        for e in members_errs:
            by_member.setdefault(e.walk.choices[e.depth][1], []).append(e)
        meant = [m for m, es in by_member.items() if not all(_is_mismatch(e, upath) for e in es)]
        if meant:
            chosen = by_member[min(meant)]
            for e in chosen:
                e.depth += 1
            kept.extend(_prune(chosen, doc, base, out, root))
            continue
        expected: list[str] = []
        for m in sorted(by_member):
            for e in by_member[m]:
                word = _EXPECTED[e.err["type"]]
                if word not in expected:
                    expected.append(word)
        if "an integer" in expected and "a number" in expected:
            expected.remove("an integer")
        path = list(base) + list(upath)
        value = members_errs[0].err.get("input")
        hint = ("write the value without quotes" if isinstance(value, str)
                and "a string" not in expected else None)
        out.append(Problem(doc.where(path), dotted(path),
                           f"expected {' or '.join(expected)}, got {_describe(value)}", hint))
    return kept


def problems_from(
    exc: ValidationError, root: Any, doc: Document, base: Sequence[Any] = ()
) -> list[Problem]:
    """Problems for every error in ``exc``, raised validating ``doc``'s value at ``base``.

    ``root`` is the model class (or annotation) that was validated.
    """
    members = _Members()
    errs = [_Err(err, walk(root, err["loc"], members)) for err in exc.errors()]
    out: list[Problem] = []
    for e in _prune(errs, doc, base, out, root):
        out.append(_problem(e.err, e.walk, root, doc, base))
    seen: set[tuple[Any, ...]] = set()
    unique: list[Problem] = []
    for p in sorted(out, key=Problem.sort_key):
        key = (p.location, p.path, p.message)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


__all__ = ["describe_pattern", "did_you_mean", "problems_from", "walk"]

"""Turn pydantic ``ValidationError``s into located, readable problems.

Pydantic reports each error with a ``loc`` path. Discriminated unions insert the tag into
that path (``('fields', 'depth', 'decimal', 'scale')``) and dict keys that fail validation
end in ``'[key]'``; both are mapped back onto the YAML node they came from. Unknown keys get
the allowed keys of the model they were found in as the hint.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import Problem, did_you_mean, expected_one_of
from .model import NAME_HINT, NAME_PATTERN
from .source import Document, dotted


def _unwrap(tp: Any) -> Any:
    """Strip Annotated/Optional wrappers."""
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(tp)]
    return [tp]


def _tag_of(cls: type[BaseModel]) -> str | None:
    f = cls.model_fields.get("type")
    if f is None:
        return None
    args = get_args(f.annotation)
    return args[0] if args else None


def _step(current: list[Any], part: Any) -> list[Any]:
    nxt: list[Any] = []
    for m in current:
        if isinstance(m, type) and issubclass(m, BaseModel):
            if isinstance(part, str) and part in m.model_fields:
                nxt.extend(_members(m.model_fields[part].annotation))
        else:
            origin = get_origin(m)
            if origin is dict:
                nxt.extend(_members(get_args(m)[1]))
            elif origin is list:
                nxt.extend(_members(get_args(m)[0]))
    return nxt


_UNION_LABELS = ("str", "int", "float", "bool", "list[", "dict[", "function-", "lax-", "json-",
                 "date", "decimal", "literal[")


def _member_label(m: Any) -> str:
    return getattr(m, "__name__", str(m))


def walk(root: type[BaseModel], loc: Sequence[Any]) -> tuple[list[Any], list[Any], bool]:
    """Follow pydantic's ``loc`` from ``root``.

    Returns the data path (union tags removed), the candidate types at the end of the path
    and whether a non-discriminated union member was named on the way (its errors come in
    groups, one per member).
    """
    data_path: list[Any] = []
    current: list[Any] = [root]
    in_union = False
    for part in loc:
        if part == "[key]":
            continue
        if len(current) > 1 and isinstance(part, str):
            models = [m for m in current if isinstance(m, type) and issubclass(m, BaseModel)]
            tagged = {_tag_of(m): m for m in models if _tag_of(m)}
            if part in tagged:  # discriminator tag inserted by pydantic
                current = [tagged[part]]
                continue
            named = [m for m in current if _member_label(m) in part]
            is_key = any(part in m.model_fields for m in models)
            looks_like_label = bool(named) or part.startswith(_UNION_LABELS)
            if not is_key and looks_like_label:
                # a smart-union member label such as 'str' or 'function-after[..., Labels]'
                current = named[:1] or current
                in_union = True
                continue
        data_path.append(part)
        current = _step(current, part)
    return data_path, current, in_union


def _single_model(candidates: list[Any]) -> type[BaseModel] | None:
    models = [m for m in candidates if isinstance(m, type) and issubclass(m, BaseModel)]
    return models[0] if len(models) == 1 else None


def _strip_tags(root: type[BaseModel], loc: Sequence[Any]) -> list[Any]:
    return walk(root, loc)[0]


_EXPECTED = {
    "model_type": "a mapping", "dict_type": "a mapping", "model_attributes_type": "a mapping",
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "bool_type": "true or false", "list_type": "a list", "date_type": "a date",
}


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def problems_from(
    exc: ValidationError, root: type[BaseModel], doc: Document, base: Sequence[Any] = ()
) -> list[Problem]:
    """Problems for every error in ``exc`` raised validating ``doc`` at ``base``."""
    out: list[Problem] = []
    unions: dict[tuple[Any, ...], tuple[Any, Any, list[str]]] = {}
    for err in exc.errors():
        loc = list(err["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        data_path, _, in_union = walk(root, loc)
        path = list(base) + data_path
        etype = err["type"]
        value = err.get("input")
        ctx = err.get("ctx") or {}
        hint: str | None = None
        where = doc.where_key(path) if is_key else doc.where(path)
        if in_union and etype in _EXPECTED:
            group = unions.setdefault(tuple(path), (where, value, []))
            if _EXPECTED[etype] not in group[2]:
                group[2].append(_EXPECTED[etype])
            continue
        if etype == "extra_forbidden":
            key = path[-1]
            parent = _single_model(walk(root, _parent_loc(loc))[1])
            allowed = sorted(parent.model_fields) if parent else []
            msg = f"unknown key '{key}'"
            hint = expected_one_of(str(key), allowed) if allowed else None
            where = doc.where_key(path)
        elif etype == "missing":
            msg = f"missing required key '{path[-1]}'"
            where = doc.where(path[:-1])
            path_for = path[:-1]
            out.append(Problem(where, dotted(path_for), msg, None))
            continue
        elif etype == "union_tag_invalid":
            disc = str(ctx.get("discriminator", "")).strip("'")
            tag = ctx.get("tag")
            expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
            what = "field type" if disc == "type" else disc
            msg = f"unknown {what} '{tag}'"
            hint = expected_one_of(str(tag), expected)
            path = path + [disc]
            where = doc.where(path)
        elif etype == "union_tag_not_found":
            disc = str(ctx.get("discriminator", "")).strip("'")
            msg = f"missing required key '{disc}'"
        elif etype == "literal_error":
            expected = [e.strip(" '") for e in str(ctx.get("expected", "")).replace(" or ", ",")
                        .split(",") if e.strip(" '")]
            msg = f"{_describe(value)} is not allowed here"
            hint = expected_one_of(str(value), expected)
        elif etype == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
            msg = f"'{value}' is not a valid name"
            hint = NAME_HINT
            suggestion = _snake(str(value))
            if suggestion:
                hint += f"; try '{suggestion}'"
        elif etype == "string_too_long" and ctx.get("max_length") == 63:
            msg = f"'{value}' is longer than 63 characters"
            hint = "PostgreSQL truncates identifiers at 63 characters; choose a shorter name"
        elif etype in _EXPECTED:
            msg = f"expected {_EXPECTED[etype]}, got {_describe(value)}"
        elif etype == "value_error":
            msg = str(ctx.get("error", err["msg"]))
        else:
            text = err["msg"]
            msg = f"{text[0].lower()}{text[1:]}, got {_describe(value)}"
        if is_key:
            msg = msg.replace("'[key]'", "key")
        out.append(Problem(where, dotted(path), msg, hint))
    for upath, (where, value, expected) in unions.items():
        out.append(Problem(where, dotted(upath),
                           f"expected {' or '.join(expected)}, got {_describe(value)}"))
    return out


def _parent_loc(loc: list[Any]) -> list[Any]:
    return loc[:-1]


def _snake(value: str) -> str | None:
    import re

    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", value.strip())
    s = re.sub(r"[^a-zA-Z0-9]+", "_", s).strip("_").lower()
    if s and not s[0].isalpha():
        s = "n_" + s
    return s[:63] if s and s != value else None


__all__ = ["problems_from", "walk", "did_you_mean"]

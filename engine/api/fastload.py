"""A precompiled fast path for loading valid request bodies; marshmallow stays the authority.

:func:`compile_loader` turns an entity's fields into one function per field, built when the
app is built. The loader is *conservative*: it returns the loaded dict only when it is sure
the generated marshmallow schema would accept the body and produce the same values, and
returns None for anything else (a missing required field, an unknown key, a string where a
number goes, an unusual date format...). The caller then runs the marshmallow schema, which
produces the error messages. So the loader never decides what is an error; it only skips
marshmallow's per-field machinery (about 100 us per record) for the bodies that are fine.
``tests/unit/engine/test_api_fastload.py`` checks with generated inputs that whenever the
loader answers, marshmallow answers the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from metamodel import Entity, Model

from .bounds import INT32
from .codecs import INT64, NOT_SURE, kind_of
from .schemas import CHILD_READ_ONLY, READ_ONLY

#: A field check: the loaded value, or _NO when the fast path is not sure.
Check = Callable[[Any], Any]
Loader = Callable[[Any, bool], dict[str, Any] | None]
#: the codecs' marker for a value the fast path is not sure of
_NO: Any = NOT_SURE


def field_check(f: Any) -> Check:
    """The fast check of one stored field (None handling is done by the caller): the
    field kind's (:meth:`engine.api.codecs.Kind.fast`)."""
    return kind_of(f).fast(f)


def _record_loader(fields: Mapping[str, Any], extra: dict[str, Check], ignored: frozenset[str],
                   tables: dict[str, Loader]) -> Loader:
    checks: dict[str, tuple[Check, bool]] = {}
    required: list[str] = []
    for name, f in fields.items():
        if f.type == "table":
            continue
        checks[name] = (field_check(f), not f.required)
        if f.required and f.default is None:
            required.append(name)
    for name, check in extra.items():
        checks[name] = (check, True)

    def load(data: Any, partial: bool) -> dict[str, Any] | None:
        if type(data) is not dict:
            return None
        if not partial:
            for name in required:
                if name not in data:
                    return None
        out: dict[str, Any] = {}
        for key, value in data.items():
            entry = checks.get(key)
            if entry is None:
                if key in ignored:
                    continue
                table = tables.get(key)
                if table is None or type(value) is not list:
                    return None
                rows = []
                for row in value:
                    loaded = table(row, False)
                    if loaded is None:
                        return None
                    rows.append(loaded)
                out[key] = rows
                continue
            if value is None:
                if not entry[1]:
                    return None
                out[key] = None
                continue
            loaded_value = entry[0](value)
            if loaded_value is _NO:
                return None
            out[key] = loaded_value
        return out

    return load


def _optional_int(v: Any) -> Any:
    return v if type(v) is int and INT64[0] <= v <= INT64[1] else _NO


def _optional_int32(v: Any) -> Any:
    return v if type(v) is int and INT32[0] <= v <= INT32[1] else _NO


def compile_loader(model: Model, ent: Entity) -> Loader:
    """The fast loader of a top-level entity's input (see the module docstring)."""
    tables = {}
    for name, f in ent.fields.items():
        if f.type == "table":
            child = model.entity(ent.targets[name])
            tables[name] = _record_loader(child.stored_fields(), {"id": _optional_int},
                                          CHILD_READ_ONLY, {})
    return _record_loader(ent.fields, {"version": _optional_int32}, READ_ONLY, tables)

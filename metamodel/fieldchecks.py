"""Checks of one field's options and default value, after its shape is valid.

Shape validation (pydantic) has already checked each option's type; these checks look at
options together (``min`` against ``max``, a default against the field's own rules) and at
the entity a link or table points to.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from .errors import Problems, expected_one_of
from .model import Entity
from .shape import EntityDef
from .spec import ACCEPT_PATTERN, ATTACHMENT_SIZE_CAP, FIELD_TYPES

_TYPE_WORDS = {
    "string": "a string", "text": "a string", "enum": "one of the enum's codes",
    "int": "an integer", "decimal": "a number", "float": "a number", "bool": "true or false",
    "date": "a date (YYYY-MM-DD) or 'today'", "datetime": "a date and time (ISO 8601) or 'now'",
}


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def check_field(d: EntityDef, ent: Entity, fname: str, f: Any,
                entities: dict[str, Entity], problems: Problems) -> None:
    """Every check of field ``fname`` of entity ``ent`` (defined in ``d``)."""
    fpath = d.path + ("fields", fname)
    doc = d.doc

    def add(option: str, message: str, hint: str | None = None) -> None:
        problems.add(doc.where(fpath + (option,)), f"{_dotted(fpath)}.{option}", message, hint)

    if f.type == "string" and f.pattern is not None:
        try:
            re.compile(f.pattern)
        except re.error as exc:
            add("pattern", f"invalid regular expression: {exc}",
                "patterns use Python 're' syntax; quote the YAML value with '...'")
    mn, mx = f.__dict__.get("min"), f.__dict__.get("max")  # not every type has them
    if mn is not None and mx is not None and mn > mx:
        add("min", f"min ({_show(mn)}) is greater than max ({_show(mx)})")
    if f.type == "string" and f.min_length is not None and f.min_length > f.max_length:
        add("min_length",
            f"min_length ({f.min_length}) is greater than max_length ({f.max_length})")
    if f.type == "decimal" and f.scale > f.precision:
        add("scale", f"scale ({f.scale}) is greater than precision ({f.precision})",
            "precision counts all digits, scale those after the decimal point")
    if f.type == "enum":
        _check_enum(d, fpath, f, problems)
    if f.type == "json":
        for opt in ("unique", "index"):
            if getattr(f, opt):
                add(opt, f"'{opt}' does not apply to a json field",
                    "databases cannot compare JSON values; index a string field instead")
    if f.type == "attachment":
        if ent.spec.child:
            add("type", "a child entity's rows cannot hold attachments",
                "put the attachment field on the parent entity, or make this a top-level "
                "entity linked to it")
        _check_attachment(d, fpath, f, problems, add)
    if f.type == "link":
        _check_link(d, ent, fname, f, entities, add)
    if f.type == "table":
        if ent.spec.child:
            add("type", "a child entity cannot have child tables of its own",
                "move the table field to the parent entity")
        for opt in ("unique", "index", "required"):
            if getattr(f, opt):
                add(opt, f"'{opt}' does not apply to a table field",
                    "a table field holds rows of a child entity, not a column")
        if f.default is not None:
            add("default", "'default' does not apply to a table field")
    if f.literal_default is not None and f.type not in ("table", "link", "attachment"):
        _check_default(d, fpath, f, problems)  # '=expr' defaults are compiled by engine.rules


def _check_enum(d: EntityDef, fpath: tuple[Any, ...], f: Any, problems: Problems) -> None:
    vpath = fpath + ("values",)
    if not f.values:
        problems.add(d.doc.where(vpath), _dotted(vpath), "an enum needs at least one value",
                     "list the codes, e.g. values: [planned, producing, shut_in]")
    if isinstance(f.values, list):
        seen: set[str] = set()
        for i, code in enumerate(f.values):
            if code in seen:
                problems.add(d.doc.where(vpath + (i,)), f"{_dotted(vpath)}[{i}]",
                             f"code '{code}' is listed twice")
            seen.add(code)


def _check_attachment(d: EntityDef, fpath: tuple[Any, ...], f: Any, problems: Problems,
                      add: Any) -> None:
    for opt in ("unique", "index"):
        if getattr(f, opt):
            add(opt, f"'{opt}' does not apply to an attachment field",
                "the record holds the file's name, size and checksum, not a value to compare")
    if f.required:
        add("required", "'required' does not apply to an attachment field",
            "a file is uploaded once the record exists; use required_if or a workflow "
            "transition's 'requires' to demand one before a step")
    if f.default is not None:
        add("default", "'default' does not apply to an attachment field",
            "a file is attached by uploading it to the record")
    if f.max_size is not None:
        size = f.max_bytes
        if size is None:
            add("max_size", f"max_size {_show(f.max_size)} is not a size",
                "write bytes or a number with KB, MB or GB, e.g. 10MB")
        elif size < 1:
            add("max_size", f"max_size {_show(f.max_size)} leaves no room for a file",
                "give the largest size accepted, e.g. 10MB")
        elif size > ATTACHMENT_SIZE_CAP:
            add("max_size", f"max_size {_show(f.max_size)} is more than the limit of 1GB",
                "keep files larger than 1GB out of the database's records")
    apath = fpath + ("accept",)
    for i, entry in enumerate(f.accept or ()):
        if not re.match(ACCEPT_PATTERN, entry):
            problems.add(d.doc.where(apath + (i,)), f"{_dotted(apath)}[{i}]",
                         f"{entry!r} is neither a MIME type nor an extension",
                         "write a MIME type such as 'application/pdf' or 'image/*', or an "
                         "extension such as '.pdf' (lowercase)")
    if f.accept is not None and not f.accept:
        add("accept", "accept is empty: no file could be attached",
            "list the accepted types, or leave 'accept' out to accept any file")


def _check_link(d: EntityDef, ent: Entity, fname: str, f: Any,
                entities: dict[str, Entity], add: Any) -> None:
    if f.on_delete == "set_null" and f.required:
        add("on_delete", "on_delete 'set_null' cannot apply to a required link",
            "use 'restrict' or 'cascade', or make the link optional (required: false)")
    target = ent.targets.get(fname)
    if target and entities[target].spec.child:
        parent = entities[target].parent
        where = f" '{parent[0]}'" if parent else ""
        add("to", f"'{target}' is a child entity; its rows are reached through their parent",
            f"link to the parent entity{where} instead")
    if f.literal_default is not None and not (isinstance(f.default, int)
                                              and not isinstance(f.default, bool)):
        add("default", f"default {_show(f.default)} of a link must be a record id (an integer)")


def _type_ok(ftype: str, value: Any) -> bool:
    if ftype in ("string", "text", "enum"):
        return isinstance(value, str)
    if ftype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if ftype in ("decimal", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ftype == "bool":
        return isinstance(value, bool)
    if ftype == "date":
        return (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
            value == "today")
    if ftype == "datetime":
        return isinstance(value, (dt.datetime, dt.date)) or value == "now"
    return ftype == "json"


def _check_default(d: EntityDef, fpath: tuple[Any, ...], f: Any, problems: Problems) -> None:
    where = d.doc.where(fpath + ("default",))
    path = _dotted(fpath) + ".default"
    value = f.default

    def add(message: str, hint: str | None = None) -> None:
        problems.add(where, path, message, hint)

    if f.type not in FIELD_TYPES:  # a registered kind judges its own defaults
        problem = f.default_problem(value)
        if problem is not None:
            add(problem)
        return
    if not _type_ok(f.type, value):
        hint = None
        if f.type in ("string", "text", "enum") and isinstance(value, (int, float, bool)):
            hint = "put the value in quotes to make it text"
        elif f.type == "enum":
            hint = expected_one_of(str(value), f.codes())
        add(f"default {_show(value)} is not {_TYPE_WORDS.get(f.type, f.type)}", hint)
        return
    if value in ("today", "now"):
        return
    if f.type == "enum" and value not in f.codes():
        add(f"default '{value}' is not one of the enum's codes",
            expected_one_of(value, f.codes()))
    if f.type == "string":
        if len(value) > f.max_length:
            add(f"default is {len(value)} characters long; max_length is {f.max_length}")
        if f.min_length is not None and len(value) < f.min_length:
            add(f"default is {len(value)} characters long; min_length is {f.min_length}")
        if f.pattern:
            try:
                if not re.fullmatch(f.pattern, value):
                    add(f"default '{value}' does not match pattern '{f.pattern}'")
            except re.error:
                pass  # reported by the pattern check
    if f.type == "decimal":
        _check_digits(f, value, add)
    mn, mx = f.__dict__.get("min"), f.__dict__.get("max")  # not every type has them
    if mn is not None and value < mn:
        add(f"default {_show(value)} is below min {_show(mn)}")
    if mx is not None and value > mx:
        add(f"default {_show(value)} is above max {_show(mx)}")


def _check_digits(f: Any, value: int | float, add: Any) -> None:
    number = decimal.Decimal(str(value)).normalize()
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    decimals = max(0, -exponent)
    whole = 0 if number.is_zero() else max(0, len(digits) + exponent)
    if whole > f.precision - f.scale:
        add(f"default {_show(value)} has {whole} digits before the decimal point; precision "
            f"{f.precision} with scale {f.scale} allows {f.precision - f.scale}")
    if decimals > f.scale:
        add(f"default {_show(value)} has {decimals} decimal places; scale is {f.scale}")

"""Cross-reference and consistency checks over resolved entities.

Each check appends problems and never stops the others, so one run reports everything.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any

from .errors import Location, Problems, expected_one_of
from .model import (
    CHILD_COLUMNS,
    SYSTEM_COLUMNS,
    Entity,
    EnumField,
    ModuleFile,
    Role,
)
from .reserved import SQL_RESERVED
from .source import Document

MAX_IDENTIFIER = 63


def check_entities(
    files: list[tuple[Document, ModuleFile]],
    entities: dict[str, Entity],
    roles: dict[str, Role],
    problems: Problems,
) -> None:
    """Run every entity-level check."""
    doc_of: dict[str, Document] = {}
    for doc, mf in files:
        for name in mf.entities:
            doc_of.setdefault(f"{mf.module}.{name}", doc)
    tables: dict[str, Entity] = {}
    for qual, ent in entities.items():
        doc = doc_of[qual]
        base = ("entities", ent.name)
        _check_names(doc, ent, base, tables, problems)
        for fname, f in ent.fields.items():
            _check_field(doc, ent, fname, f, base + ("fields", fname), entities, problems)
        _check_lists(doc, ent, base, problems)
        _check_permissions(doc, ent, base, roles, problems)
        if ent.spec.child and ent.parent is None and ent.qualname in entities:
            problems.add(doc.where_key(base + ("child",)) if ("child" in _keys(doc, base))
                         else ent.location, _dotted(base),
                         f"child entity '{qual}' is not the table of any entity",
                         "add a 'type: table' field with 'of: " + ent.name + "' to its parent, "
                         "or remove 'child: true'")
    _check_required_cycles(doc_of, entities, problems)


def _keys(doc: Document, base: tuple[Any, ...]) -> set[str]:
    node = doc.value
    for part in base:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return set(node) if isinstance(node, dict) else set()


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _check_names(doc: Document, ent: Entity, base: tuple[Any, ...],
                 tables: dict[str, Entity], problems: Problems) -> None:
    where = doc.where_key(base)
    if ent.name in SQL_RESERVED:
        problems.add(where, _dotted(base), f"entity name '{ent.name}' is an SQL reserved word",
                     "choose a more specific name, e.g. 'work_order' instead of 'order'")
    table = ent.table
    if len(table) > MAX_IDENTIFIER:
        problems.add(where, _dotted(base),
                     f"table name '{table}' is {len(table)} characters long (limit 63)",
                     "shorten the module or entity name")
    if table in tables:
        other = tables[table]
        problems.add(where, _dotted(base),
                     f"'{ent.qualname}' and '{other.qualname}' both become table '{table}' "
                     f"(first defined at {other.location})",
                     "rename one of the entities or modules")
    else:
        tables[table] = ent
    reserved_cols = set(SYSTEM_COLUMNS) | (set(CHILD_COLUMNS) if ent.spec.child else set())
    for fname in ent.fields:
        fpath = base + ("fields", fname)
        if fname in reserved_cols:
            problems.add(doc.where_key(fpath), _dotted(fpath),
                         f"field name '{fname}' collides with a system column",
                         "system columns are " + ", ".join(sorted(reserved_cols))
                         + "; choose another name")
        elif fname in SQL_RESERVED:
            problems.add(doc.where_key(fpath), _dotted(fpath),
                         f"field name '{fname}' is an SQL reserved word",
                         f"choose a more specific name, e.g. '{ent.name}_{fname}'")
    renamed: dict[str, str] = {}
    for fname, f in ent.fields.items():
        old = f.renamed_from
        if old is None:
            continue
        fpath = base + ("fields", fname, "renamed_from")
        if old in ent.fields:
            problems.add(doc.where(fpath), _dotted(fpath),
                         f"'{old}' is still a field of '{ent.qualname}'",
                         "a renamed field's old name must no longer be defined")
        elif old in renamed:
            problems.add(doc.where(fpath), _dotted(fpath),
                         f"fields '{renamed[old]}' and '{fname}' are both renamed from '{old}'")
        renamed[old] = fname


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
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if ftype == "datetime":
        return isinstance(value, (dt.datetime, dt.date)) or value == "now"
    if ftype == "json":
        return True
    return False


_TYPE_WORDS = {
    "string": "a string", "text": "a string", "enum": "one of the values", "int": "an integer",
    "decimal": "a number", "float": "a number", "bool": "true or false",
    "date": "a date (YYYY-MM-DD)", "datetime": "a date and time (ISO 8601) or 'now'",
}


def _check_field(doc: Document, ent: Entity, fname: str, f: Any, fpath: tuple[Any, ...],
                 entities: dict[str, Entity], problems: Problems) -> None:
    path = _dotted(fpath)
    if f.type == "string" and f.pattern is not None:
        try:
            re.compile(f.pattern)
        except re.error as exc:
            problems.add(doc.where(fpath + ("pattern",)), path + ".pattern",
                         f"invalid regular expression: {exc}",
                         "patterns use Python 're' syntax; quote the YAML value with ''")
    mn, mx = getattr(f, "min", None), getattr(f, "max", None)
    if mn is not None and mx is not None and mn > mx:
        problems.add(doc.where(fpath + ("min",)), path + ".min",
                     f"min ({mn}) is greater than max ({mx})")
    if f.type == "string" and f.min_length is not None and f.min_length > f.max_length:
        problems.add(doc.where(fpath + ("min_length",)), path + ".min_length",
                     f"min_length ({f.min_length}) is greater than max_length ({f.max_length})")
    if f.type == "decimal" and f.scale > f.precision:
        problems.add(doc.where(fpath + ("scale",)), path + ".scale",
                     f"scale ({f.scale}) is greater than precision ({f.precision})",
                     "precision counts all digits, scale those after the decimal point")
    if f.type == "link" and f.on_delete == "set_null" and f.required:
        problems.add(doc.where(fpath + ("on_delete",)), path + ".on_delete",
                     "on_delete 'set_null' cannot apply to a required link",
                     "use 'restrict' or 'cascade', or make the link optional")
    if f.type == "link":
        target = ent.targets.get(fname)
        if target and entities[target].spec.child:
            problems.add(doc.where(fpath + ("to",)), path + ".to",
                         f"'{target}' is a child entity; its rows are reached through their parent",
                         "link to the parent entity instead")
    if f.type == "table":
        if ent.spec.child:
            problems.add(doc.where(fpath + ("type",)), path + ".type",
                         "a child entity cannot have child tables of its own",
                         "move the table to the parent entity")
        for opt in ("unique", "index", "required"):
            if getattr(f, opt):
                problems.add(doc.where(fpath + (opt,)), f"{path}.{opt}",
                             f"'{opt}' does not apply to a table field")
        if f.default is not None:
            problems.add(doc.where(fpath + ("default",)), path + ".default",
                         "'default' does not apply to a table field")
    if f.type == "enum" and isinstance(f, EnumField) and not f.values:
        problems.add(doc.where(fpath + ("values",)), path + ".values", "an enum needs values")
    if f.default is not None and f.type not in ("table", "link"):
        _check_default(doc, f, fpath, problems)
    elif f.type == "link" and f.default is not None and not (
            isinstance(f.default, int) and not isinstance(f.default, bool)):
        problems.add(doc.where(fpath + ("default",)), path + ".default",
                     f"default {f.default!r} of a link must be a record id (an integer)")


def _check_default(doc: Document, f: Any, fpath: tuple[Any, ...], problems: Problems) -> None:
    where = doc.where(fpath + ("default",))
    path = _dotted(fpath) + ".default"
    value = f.default
    if f.type == "date" and value == "today":
        return
    if not _type_ok(f.type, value):
        problems.add(where, path, f"default {value!r} is not {_TYPE_WORDS.get(f.type, f.type)}")
        return
    if f.type == "enum":
        codes = f.codes()
        if value not in codes:
            problems.add(where, path, f"default '{value}' is not one of the enum's values",
                         expected_one_of(value, codes))
    if f.type == "string":
        if len(value) > f.max_length:
            problems.add(where, path, f"default is {len(value)} characters; max_length is "
                         f"{f.max_length}")
        if f.pattern:
            try:
                if not re.fullmatch(f.pattern, value):
                    problems.add(where, path,
                                 f"default '{value}' does not match pattern '{f.pattern}'")
            except re.error:
                pass  # reported by the pattern check
    mn, mx = getattr(f, "min", None), getattr(f, "max", None)
    if mn is not None and value < mn:
        problems.add(where, path, f"default {value!r} is below min {mn!r}")
    if mx is not None and value > mx:
        problems.add(where, path, f"default {value!r} is above max {mx!r}")


def _check_lists(doc: Document, ent: Entity, base: tuple[Any, ...], problems: Problems) -> None:
    stored = ent.stored_fields()
    for key in ("unique_together", "indexes"):
        for i, group in enumerate(getattr(ent.spec, key)):
            if len(group) == 0:
                problems.add(doc.where(base + (key, i)), f"{_dotted(base)}.{key}[{i}]",
                             "an empty list of fields")
            for j, fname in enumerate(group):
                if fname not in stored and fname not in SYSTEM_COLUMNS:
                    problems.add(doc.where(base + (key, i, j)),
                                 f"{_dotted(base)}.{key}[{i}][{j}]",
                                 f"unknown field '{fname}'", expected_one_of(fname, stored))
    if ent.spec.naming is not None:
        fname = ent.spec.naming.field
        if fname not in stored:
            problems.add(doc.where(base + ("naming", "field")), f"{_dotted(base)}.naming.field",
                         f"unknown field '{fname}'", expected_one_of(fname, stored))
    if ent.spec.title is not None:
        try:
            names = [n for _, n, _, _ in string.Formatter().parse(ent.spec.title) if n]
        except ValueError as exc:
            problems.add(doc.where(base + ("title",)), f"{_dotted(base)}.title",
                         f"invalid title template: {exc}", "use {field} to insert a field")
            return
        for n in names:
            if n not in stored and n not in SYSTEM_COLUMNS:
                problems.add(doc.where(base + ("title",)), f"{_dotted(base)}.title",
                             f"title names unknown field '{n}'", expected_one_of(n, stored))


def _check_permissions(doc: Document, ent: Entity, base: tuple[Any, ...],
                       roles: dict[str, Role], problems: Problems) -> None:
    if ent.spec.permissions is None:
        return
    for role in ent.spec.permissions:
        if role not in roles:
            p = base + ("permissions", role)
            problems.add(doc.where_key(p), _dotted(p), f"unknown role '{role}'",
                         expected_one_of(role, roles))


def _check_required_cycles(doc_of: dict[str, Document], entities: dict[str, Entity],
                           problems: Problems) -> None:
    """Required links that form a cycle make every entity on it impossible to create."""
    graph: dict[str, list[tuple[str, str]]] = {}
    for qual, ent in entities.items():
        graph[qual] = [(fname, ent.targets[fname]) for fname, f in ent.fields.items()
                       if f.type == "link" and f.required and fname in ent.targets]
    reported: set[frozenset[str]] = set()
    for start in sorted(graph):
        stack: list[tuple[str, list[tuple[str, str]]]] = [(start, [])]
        while stack:
            node, trail = stack.pop()
            for fname, target in graph.get(node, []):
                step = trail + [(node, fname)]
                if target == start:
                    members = frozenset(n for n, _ in step)
                    if members in reported:
                        continue
                    reported.add(members)
                    first_ent, first_field = step[0]
                    ent = entities[first_ent]
                    loc: Location = ent.field_locations.get(first_field, ent.location)
                    cycle = " -> ".join(f"{n}.{f}" for n, f in step) + f" -> {start}"
                    problems.add(loc, f"entities.{ent.name}.fields.{first_field}",
                                 f"required links form a cycle: {cycle}",
                                 "no record on the cycle could ever be created first; make one "
                                 "of these links optional (required: false)")
                elif target not in {n for n, _ in step} and len(step) < 50:
                    stack.append((target, step))

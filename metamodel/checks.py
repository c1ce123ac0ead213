"""Cross-reference and consistency checks over resolved entities (phase 4 of loading).

Each check appends problems and never stops the others, so one run reports everything.
Name checks run on every entity and field written with a valid name, even when the rest
of its definition failed validation; the other checks run on what the shape phase could
validate (:mod:`metamodel.shape`) and stay quiet about references to what it could not.
"""

from __future__ import annotations

import string
from typing import Any

from .behaviourchecks import check_behaviour
from .errors import Location, Problems, expected_one_of
from .fieldchecks import check_field
from .model import Entity, Role
from .reserved import SQL_RESERVED
from .shape import EntityDef, Salvage
from .spec import CHILD_COLUMNS, SYSTEM_COLUMNS

MAX_IDENTIFIER = 63


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def check_entities(salvage: Salvage, entities: dict[str, Entity], roles: dict[str, Role],
                   problems: Problems) -> None:
    """Run every entity-level check."""
    tables: dict[str, EntityDef] = {}
    for qual, d in salvage.defs.items():
        _check_entity_name(d, tables, problems)
        _check_field_names(d, problems)
        ent = entities.get(qual)
        if ent is None:
            continue
        if not d.field_names and not d.broken_fields:
            problems.add(d.doc.where(d.path + ("fields",)), _dotted(d.path + ("fields",)),
                         "an entity needs at least one field")
        for fname, f in ent.fields.items():
            check_field(d, ent, fname, f, entities, problems)
        _check_field_renames(d, ent, problems)
        _check_lists(d, ent, problems)
        _check_generated_names(d, ent, problems)
        _check_permissions(d, ent, roles, salvage, problems)
        _check_access_rules(d, ent, roles, salvage, problems)
        check_behaviour(d, ent, entities, roles, salvage, problems)
        if ent.spec.child and ent.parent is None and not salvage.maybe_referenced(ent.name):
            problems.add(d.doc.where_key(d.path + ("child",)), _dotted(d.path + ("child",)),
                         f"child entity '{qual}' is not the table of any entity",
                         f"add a field 'type: table, of: {ent.name}' to its parent entity, "
                         "or remove 'child: true'")
    _check_entity_renames(salvage, entities, problems)
    _check_required_cycles(entities, problems)


# --------------------------------------------------------------------------- names


def check_module_name(doc: Any, module: str, problems: Problems,
                      reserved_urls: frozenset[str] = frozenset()) -> None:
    """``campo``/``campo_*`` name platform tables; ``reserved_urls`` are the first URL
    segments the engine serves itself (the engine owns the list and passes it in)."""
    if module == "campo" or module.startswith("campo_"):
        problems.add(doc.where(("module",)), "module",
                     f"module name '{module}' is reserved: Campo's own tables are named "
                     "campo_<name> and a module's tables <module>_<entity>",
                     "choose a module name that is not 'campo' and does not start with "
                     "'campo_'")
    elif module in reserved_urls:
        problems.add(doc.where(("module",)), "module",
                     f"module name '{module}' is reserved: /api/{module} is a built-in URL "
                     "and a module's records are served at /api/<module>/<entity>",
                     "choose another name; reserved: "
                     + ", ".join(sorted(n for n in reserved_urls if "." not in n)))


def _check_entity_name(d: EntityDef, tables: dict[str, EntityDef], problems: Problems) -> None:
    path = _dotted(d.path)
    if d.name in SQL_RESERVED:
        problems.add(d.location, path, f"entity name '{d.name}' is an SQL reserved word",
                     f"choose a more specific name that says what kind of {d.name} it is")
    table = f"{d.module}_{d.name}"
    if len(table) > MAX_IDENTIFIER:
        problems.add(d.location, path,
                     f"table name '{table}' is {len(table)} characters long (limit 63)",
                     "the table is named <module>_<entity>; shorten the module or entity name")
    other = tables.get(table)
    if other is not None:
        problems.add(d.location, path,
                     f"'{d.qualname}' and '{other.qualname}' would both be stored in table "
                     f"'{table}' (first defined at {other.location})",
                     "tables are named <module>_<entity>; rename one of the entities")
    else:
        tables[table] = d


def _is_child(d: EntityDef) -> bool:
    if d.spec is not None:
        return d.spec.child
    raw = d.doc.value.get("entities", {}).get(d.name)
    return isinstance(raw, dict) and raw.get("child") is True


def _check_field_names(d: EntityDef, problems: Problems) -> None:
    reserved_cols = set(SYSTEM_COLUMNS) | (set(CHILD_COLUMNS) if _is_child(d) else set())
    for fname in d.field_names:
        fpath = d.path + ("fields", fname)
        if fname in reserved_cols:
            problems.add(d.doc.where_key(fpath), _dotted(fpath),
                         f"field name '{fname}' collides with a system column",
                         "system columns are " + ", ".join(sorted(reserved_cols))
                         + "; choose another name")
        elif fname in SQL_RESERVED:
            problems.add(d.doc.where_key(fpath), _dotted(fpath),
                         f"field name '{fname}' is an SQL reserved word",
                         f"choose a more specific name, e.g. '{d.name}_{fname}'")


def _check_field_renames(d: EntityDef, ent: Entity, problems: Problems) -> None:
    renamed: dict[str, str] = {}
    for fname, f in ent.fields.items():
        old = f.renamed_from
        if old is None:
            continue
        fpath = d.path + ("fields", fname, "renamed_from")
        where = d.doc.where(fpath)
        if old == fname:
            problems.add(where, _dotted(fpath), f"field '{fname}' is renamed from itself",
                         "remove 'renamed_from:' or give the field's previous name")
        elif old in ent.fields or old in d.broken_fields:
            problems.add(where, _dotted(fpath), f"'{old}' is still a field of '{ent.qualname}'",
                         "a renamed field's old name must no longer be defined")
        elif old in renamed:
            problems.add(where, _dotted(fpath),
                         f"fields '{renamed[old]}' and '{fname}' are both renamed from '{old}'",
                         "a field can be renamed into one new field only")
        renamed.setdefault(old, fname)


def _check_entity_renames(salvage: Salvage, entities: dict[str, Entity],
                          problems: Problems) -> None:
    renamed: dict[str, str] = {}
    for qual, ent in entities.items():
        old = ent.spec.renamed_from
        if old is None:
            continue
        d = salvage.defs[qual]
        path = d.path + ("renamed_from",)
        where = d.doc.where(path)
        old_qual = f"{ent.module}.{old}"
        if old == ent.name:
            problems.add(where, _dotted(path), f"entity '{qual}' is renamed from itself",
                         "remove 'renamed_from:' or give the entity's previous name")
        elif old_qual in salvage.defs:
            problems.add(where, _dotted(path),
                         f"'{old_qual}' is still defined at {salvage.defs[old_qual].location}",
                         "a renamed entity's old name must no longer be defined")
        elif old_qual in renamed:
            problems.add(where, _dotted(path),
                         f"entities '{renamed[old_qual]}' and '{qual}' are both renamed from "
                         f"'{old_qual}'", "an entity can be renamed into one new entity only")
        renamed.setdefault(old_qual, qual)


# --------------------------------------------------------------------------- field lists


def _columns(ent: Entity) -> set[str]:
    cols = set(SYSTEM_COLUMNS) | set(ent.stored_fields())
    return cols | set(CHILD_COLUMNS) if ent.spec.child else cols


def _field_ref(d: EntityDef, ent: Entity, fname: str, indexed: bool
               ) -> tuple[str, str | None] | None:
    """A problem (message, hint) when ``fname`` cannot be used as a column, else ``None``."""
    if fname in d.broken_fields:
        return None
    f = ent.fields.get(fname)
    if f is not None and f.type == "table":
        return (f"'{fname}' is a table field; only columns of this entity's table can be used",
                None)
    if f is not None and f.is_virtual:
        return (f"'{fname}' is a virtual computed field (stored: false); it has no column",
                None)
    if f is not None and f.type == "json" and indexed:
        return (f"'{fname}' is a json field and cannot be part of a unique constraint or index",
                None)
    if fname not in _columns(ent):
        return f"unknown field '{fname}'", expected_one_of(fname, ent.stored_fields())
    return None


def _check_lists(d: EntityDef, ent: Entity, problems: Problems) -> None:
    base = d.path
    for key in ("unique_together", "indexes"):
        for i, group in enumerate(getattr(ent.spec, key)):
            gpath = base + (key, i)
            if len(group) == 0:
                problems.add(d.doc.where(gpath), f"{_dotted(base)}.{key}[{i}]",
                             "an empty list of fields", "list one or more field names")
            seen: set[str] = set()
            for j, fname in enumerate(group):
                where, path = d.doc.where(gpath + (j,)), f"{_dotted(base)}.{key}[{i}][{j}]"
                if fname in seen:
                    problems.add(where, path, f"field '{fname}' is listed twice")
                seen.add(fname)
                bad = _field_ref(d, ent, fname, indexed=True)
                if bad:
                    problems.add(where, path, *bad)
    if ent.spec.naming is not None:
        fname = ent.spec.naming.field
        bad = _field_ref(d, ent, fname, indexed=False)
        if bad:
            problems.add(d.doc.where(base + ("naming", "field")), f"{_dotted(base)}.naming.field",
                         *bad)
    if ent.spec.title is not None:
        _check_title(d, ent, ent.spec.title, problems)


def _check_title(d: EntityDef, ent: Entity, title: str, problems: Problems) -> None:
    where, path = d.doc.where(d.path + ("title",)), _dotted(d.path + ("title",))
    hint = "write {field} to insert a field's value, e.g. '{code} {name}'"
    try:
        names = [n for _, n, _, _ in string.Formatter().parse(title) if n is not None]
    except ValueError as exc:
        problems.add(where, path, f"invalid title template: {exc}", hint)
        return
    reported: set[str] = set()
    for n in names:
        if n == "" or n.isdigit():
            if "positional" not in reported:
                problems.add(where, path, "a title placeholder must name a field", hint)
            reported.add("positional")
            continue
        if "." in n or "[" in n:
            problems.add(where, path, f"title placeholder '{{{n}}}' must be a plain field name",
                         "'.' and '[...]' are not supported in titles")
            continue
        bad = _field_ref(d, ent, n, indexed=False)
        if bad:
            msg, fhint = bad
            problems.add(where, path, msg, fhint)


def _check_generated_names(d: EntityDef, ent: Entity, problems: Problems) -> None:
    """Two constraints or indexes the database would give the same generated name."""
    declared: dict[tuple[str, str], list[tuple[tuple[str, ...], str]]] = {}

    def claim(kind: str, cols: tuple[str, ...], origin: str, where: Location, path: str) -> None:
        key = (kind, "_".join(cols))
        earlier = list(declared.get(key, []))
        declared.setdefault(key, []).append((cols, origin))
        if not earlier:
            return
        what = "unique constraint" if kind == "uq" else "index"
        same = [o for c, o in earlier if c == cols]
        if same:
            problems.add(where, path, f"this {what} on [{', '.join(cols)}] repeats {same[0]}",
                         "remove one of them")
        else:
            problems.add(where, path,
                         f"this {what} on [{', '.join(cols)}] would get the same generated "
                         f"name as {earlier[0][1]} on [{', '.join(earlier[0][0])}]",
                         "generated names join the column names with '_'; reorder the columns")

    if ent.spec.child:
        declared[("ix", "parent_id")] = [(("parent_id",), "the index on parent_id")]
    for fname, f in ent.stored_fields().items():
        fpath = d.path + ("fields", fname)
        if f.unique:
            claim("uq", (fname,), f"'unique: true' of field '{fname}'",
                  d.doc.where(fpath + ("unique",)), _dotted(fpath + ("unique",)))
        elif f.index and not implicit_index_covered(ent, fname, f):
            claim("ix", (fname,), f"'index: true' of field '{fname}'",
                  d.doc.where(fpath + ("index",)), _dotted(fpath + ("index",)))
    for key, kind in (("unique_together", "uq"), ("indexes", "ix")):
        for i, group in enumerate(getattr(ent.spec, key)):
            if group:
                claim(kind, tuple(group), f"{key}[{i}]", d.doc.where(d.path + (key, i)),
                      f"{_dotted(d.path)}.{key}[{i}]")


def implicit_index_covered(ent: Entity, name: str, f: Any) -> bool:
    """A link's index by default (no ``index:`` written) is not made when ``indexes:``
    already has the same one-column index."""
    return (f.type == "link" and "index" not in f.model_fields_set
            and [name] in ent.spec.indexes)


# --------------------------------------------------------------------------- permissions


def _check_permissions(d: EntityDef, ent: Entity, roles: dict[str, Role], salvage: Salvage,
                       problems: Problems) -> None:
    perms = ent.spec.permissions
    if perms is None:
        return
    base = d.path + ("permissions",)
    if ent.spec.child:
        problems.add(d.doc.where_key(base), _dotted(base),
                     "a child entity has no permissions of its own; its rows are read and "
                     "written with its parent's", "move 'permissions:' to the parent entity")
        return
    for role, actions in perms.items():
        p = base + (role,)
        if role not in roles and role not in salvage.broken_roles:
            problems.add(d.doc.where_key(p), _dotted(p), f"unknown role '{role}'",
                         expected_one_of(role, roles))
        seen: set[str] = set()
        for i, action in enumerate(actions):
            if action in seen:
                problems.add(d.doc.where(p + (i,)), f"{_dotted(p)}[{i}]",
                             f"action '{action}' is listed twice")
            seen.add(action)


def _check_access_rules(d: EntityDef, ent: Entity, roles: dict[str, Role],
                        salvage: Salvage, problems: Problems) -> None:
    """``hidden_for``/``readonly_for`` name known roles, on top-level entities only;
    ``scope`` only on top-level entities (its expression is checked by engine.rules)."""
    if ent.spec.child and ent.spec.scope is not None:
        p = d.path + ("scope",)
        problems.add(d.doc.where_key(p), _dotted(p),
                     "a child entity has no scope of its own; its rows are seen with their "
                     "parent", "move 'scope:' to the parent entity")
    for fname, f in ent.fields.items():
        for key in ("hidden_for", "readonly_for"):
            listed = getattr(f, key, None) or []
            base = d.path + ("fields", fname, key)
            if listed and ent.spec.child:
                problems.add(d.doc.where_key(base), _dotted(base),
                             f"fields of a child entity have no {key} of their own; its rows "
                             "are shown and written with their parent's",
                             f"put '{key}' on the parent's table field")
                continue
            for i, role in enumerate(listed):
                if role not in roles and role not in salvage.broken_roles:
                    problems.add(d.doc.where(base + (i,)), f"{_dotted(base)}[{i}]",
                                 f"unknown role '{role}'", expected_one_of(role, roles))


# --------------------------------------------------------------------------- cycles


def _sccs(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succ = graph.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(out)


def _check_required_cycles(entities: dict[str, Entity], problems: Problems) -> None:
    """Required links that form a cycle make every entity on it impossible to create first."""
    edges: dict[str, list[tuple[str, str]]] = {}
    for qual, ent in entities.items():
        edges[qual] = sorted((fname, ent.targets[fname]) for fname, f in ent.fields.items()
                             if f.type == "link" and f.required and fname in ent.targets)
    graph = {q: [t for _, t in es] for q, es in edges.items()}
    for comp in _sccs(graph):
        start = comp[0]
        if len(comp) == 1 and start not in graph[start]:
            continue
        members = set(comp)
        # breadth-first search inside the component for the shortest way back to start
        prev: dict[str, tuple[str, str]] = {}
        queue = [start]
        found: tuple[str, str] | None = None
        while queue and found is None:
            node = queue.pop(0)
            for fname, target in edges[node]:
                if target == start:
                    found = (node, fname)
                    break
                if target in members and target not in prev and target != start:
                    prev[target] = (node, fname)
                    queue.append(target)
        assert found is not None
        steps = [found]
        while steps[0][0] != start:
            steps.insert(0, prev[steps[0][0]])
        first_ent, first_field = steps[0]
        ent = entities[first_ent]
        loc = ent.field_locations.get(first_field, ent.location)
        cycle = " -> ".join(f"{n}.{f}" for n, f in steps) + f" -> {start}"
        problems.add(loc, f"entities.{ent.name}.fields.{first_field}",
                     f"required links form a cycle: {cycle}",
                     "no record on the cycle could ever be created first; make one of these "
                     "links optional (required: false)")

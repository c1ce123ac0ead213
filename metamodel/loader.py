"""Load a Campo project's YAML into one validated :class:`~metamodel.model.Model`.

Phases (each collects every problem before the next runs; a later phase is skipped only
for the parts an earlier phase could not read):

1. read: every ``modules/**/*.yaml`` is composed with marks (:mod:`metamodel.source`);
2. shape: each document is validated against :class:`~metamodel.spec.ModuleFile`;
3. resolve: modules merge across files, links and child tables find their targets, roles
   and permissions expand;
4. check: cross-references, defaults, reserved words, name collisions, cycles of required
   links.

Example::

    from pathlib import Path
    from metamodel import load, DefinitionError
    try:
        model = load(Path("."))
    except DefinitionError as err:
        print(err)            # every problem, one per line
    else:
        model.entity("showcase.asset").table   # 'showcase_asset'
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .checks import check_entities, check_module_name
from .errors import Location, Problems, did_you_mean, expected_one_of
from .model import Entity, Model, Module, Role
from .shape import EntityDef, ParsedFile, Salvage, parse_file
from .source import Document, read_yaml
from .spec import (
    BUILTIN_ROLE_LABELS,
    BUILTIN_ROLES,
    DEFAULT_PERMISSIONS,
    EntitySpec,
    Labels,
    LabelText,
    labels_of,
)

log = logging.getLogger(__name__)


def find_files(root: Path, folder: str) -> list[Path]:
    """YAML files under ``root/folder``, sorted for stable output."""
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def display_path(path: Path, root: Path) -> str:
    """A path as shown in messages: relative to the project root when possible."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def read_documents(root: Path, folder: str, problems: Problems) -> list[Document]:
    """Read every YAML file of ``folder``; unreadable files become problems."""
    docs = []
    for path in find_files(root, folder):
        doc = read_yaml(path, display_path(path, root), problems)
        if doc is not None:
            docs.append(doc)
    return docs


def load(root: Path | str = ".", overlays: Sequence[Path | str] = (),
         reserved_urls: frozenset[str] = frozenset()) -> Model:
    """Load and validate the project at ``root``; raise DefinitionError listing every problem.

    ``overlays`` are site folders whose ``modules/**/*.yaml`` change the base model
    (:mod:`metamodel.overlays`); later ones take precedence. ``reserved_urls``: module names
    the caller serves URLs under (the engine passes its built-in segments).
    """
    model, problems = collect(root, overlays, reserved_urls)
    problems.raise_if_any()
    return model


def collect(root: Path | str = ".", overlays: Sequence[Path | str] = (),
            reserved_urls: frozenset[str] = frozenset()) -> tuple[Model, Problems]:
    """Like :func:`load`, but return the model built from what is sound plus the problems.

    The engine uses this to add its own checks (expressions) before reporting everything.
    """
    from .overlays import apply_overlays

    root = Path(root)
    problems = Problems()
    docs = read_documents(root, "modules", problems)
    if overlays:
        docs = apply_overlays(docs, [Path(o) for o in overlays], root, problems)
    model = build_model(docs, problems, root=str(root), reserved_urls=reserved_urls)
    if overlays:
        model = dataclasses.replace(model, overlays=tuple(str(o) for o in overlays))
    return model, problems


def build_model(docs: Iterable[Document], problems: Problems, root: str = ".",
                reserved_urls: frozenset[str] = frozenset()) -> Model:
    """Validate documents and resolve them into a Model (problems collected, not raised)."""
    files = [pf for doc in docs if (pf := parse_file(doc, problems)) is not None]
    salvage = Salvage()
    for pf in files:
        salvage.add_file(pf)
        if pf.module is not None:
            check_module_name(pf.doc, pf.module, problems, reserved_urls)
    roles = _resolve_roles(files, salvage, problems)
    modules, entities = _resolve_entities(files, roles, salvage, problems)
    check_entities(salvage, entities, roles, problems)
    incomplete = frozenset(q for q, d in salvage.defs.items()
                           if d.spec is None or d.broken_fields or d.dropped_keys)
    return Model(modules=modules, entities=entities, roles=roles, root=root,
                 incomplete=incomplete)


def _resolve_roles(files: list[ParsedFile], salvage: Salvage, problems: Problems
                   ) -> dict[str, Role]:
    roles: dict[str, Role] = {
        name: Role(name, Labels(es=BUILTIN_ROLE_LABELS[name][0], en=BUILTIN_ROLE_LABELS[name][1]),
                   (), True, None) for name in BUILTIN_ROLES
    }
    broken_at: dict[str, Location] = {}
    for pf in files:
        for name, spec in pf.roles.items():
            where = pf.doc.where_key(("roles", name))
            if name in roles or name in broken_at:
                first = roles[name].location if name in roles else broken_at[name]
                why = ("is a built-in role" if name in roles and roles[name].builtin
                       else f"is already defined at {first}")
                problems.add(where, f"roles.{name}", f"role '{name}' {why}",
                             "choose another name, or use 'inherits:' to extend a role")
                continue
            if spec is None:
                salvage.broken_roles.add(name)
                broken_at[name] = where
                continue
            roles[name] = Role(name, labels_of(spec.label, name), tuple(spec.inherits), False,
                               where)
    for pf in files:
        for name, spec in pf.roles.items():
            if spec is None or roles.get(name) is None or roles[name].location != \
                    pf.doc.where_key(("roles", name)):
                continue
            for i, parent in enumerate(spec.inherits):
                if parent not in roles and parent not in salvage.broken_roles:
                    problems.add(pf.doc.where(("roles", name, "inherits", i)),
                                 f"roles.{name}.inherits[{i}]", f"unknown role '{parent}'",
                                 expected_one_of(parent, roles))
    _check_role_cycles(roles, problems)
    return roles


def _check_role_cycles(roles: dict[str, Role], problems: Problems) -> None:
    reported: set[frozenset[str]] = set()
    for name in sorted(roles):
        role = roles[name]
        # depth-first search for a path from one of name's parents back to name
        stack: list[tuple[str, list[str]]] = [(p, [name]) for p in reversed(role.inherits)]
        seen: set[str] = set()
        while stack:
            r, trail = stack.pop()
            if r == name:
                members = frozenset(trail)
                if members not in reported:
                    reported.add(members)
                    assert role.location is not None
                    problems.add(role.location, f"roles.{name}.inherits",
                                 "roles inherit from each other in a cycle: "
                                 + " -> ".join(trail + [name]),
                                 "remove one of the 'inherits:' entries")
                break
            if r in seen or r not in roles:
                continue
            seen.add(r)
            stack.extend((p, trail + [r]) for p in reversed(roles[r].inherits))


def _closure(roles: dict[str, Role], role: str) -> set[str]:
    out, stack = set(), [role]
    while stack:
        r = stack.pop()
        if r in out or r not in roles:
            continue
        out.add(r)
        stack.extend(roles[r].inherits)
    return out


def resolve_permissions(spec: EntitySpec, roles: dict[str, Role]) -> dict[str, frozenset[str]]:
    """Role -> allowed actions for an entity: defaults applied, inheritance expanded.

    Without a ``permissions:`` block an entity gets :data:`DEFAULT_PERMISSIONS`. With one,
    exactly the roles it lists get the listed actions, plus ``admin`` keeps every action
    unless the block lists ``admin`` itself. A role also gets every action of the roles it
    inherits from.
    """
    return _permissions(spec, roles, {role: _closure(roles, role) for role in roles})


def _resolve_entities(
    files: list[ParsedFile], roles: dict[str, Role], salvage: Salvage, problems: Problems
) -> tuple[dict[str, Module], dict[str, Entity]]:
    module_specs: dict[str, tuple[Location, LabelText | None, Location | None]] = {}
    by_module: dict[str, dict[str, EntityDef]] = {}
    for pf in files:
        if pf.module is None:
            continue
        _merge_module_label(pf, module_specs, problems)
        ents = by_module.setdefault(pf.module, {})
        for name, d in pf.entities.items():
            if name in ents:
                problems.add(d.location, f"entities.{name}",
                             f"entity '{pf.module}.{name}' is already defined at "
                             f"{ents[name].location}",
                             "an entity is defined in one file; rename or remove one of them")
                continue
            ents[name] = d
            salvage.defs[d.qualname] = d
    targets = {q: _targets(d, salvage, problems) for q, d in salvage.defs.items()
               if d.spec is not None}
    parents = _parents(salvage, targets, problems)
    closures = {role: _closure(roles, role) for role in roles}
    modules: dict[str, Module] = {}
    entities: dict[str, Entity] = {}
    for module, ents in by_module.items():
        mod_ents: dict[str, Entity] = {}
        for name, d in ents.items():
            if d.spec is None:
                continue
            ent = Entity(
                module=module, name=name, spec=d.spec, location=d.location,
                targets=targets.get(d.qualname, {}), parent=parents.get(d.qualname),
                permissions=_permissions(d.spec, roles, closures),
                field_locations={f: d.doc.where_key(d.path + ("fields", f))
                                 for f in d.spec.fields},
                doc=d.doc,
            )
            mod_ents[name] = ent
            entities[d.qualname] = ent
        loc, label, _ = module_specs[module]
        modules[module] = Module(module, labels_of(label, module), mod_ents, loc)
    return modules, entities


def _permissions(spec: EntitySpec, roles: dict[str, Role], closures: dict[str, set[str]]
                 ) -> dict[str, frozenset[str]]:
    declared: dict[str, Any] = dict(DEFAULT_PERMISSIONS)
    if spec.permissions is not None:
        declared = {"admin": DEFAULT_PERMISSIONS["admin"], **spec.permissions}
    return {role: frozenset(a for r in closures[role] for a in declared.get(r, ()))
            for role in roles}


def _merge_module_label(
    pf: ParsedFile,
    module_specs: dict[str, tuple[Location, LabelText | None, Location | None]],
    problems: Problems,
) -> None:
    assert pf.module is not None
    label_at = pf.doc.where_key(("label",)) if pf.label is not None else None
    if pf.module not in module_specs:
        module_specs[pf.module] = (pf.doc.where(("module",)), pf.label, label_at)
        return
    loc, label, first_at = module_specs[pf.module]
    if pf.label is None:
        return
    if label is None:
        module_specs[pf.module] = (loc, pf.label, label_at)
    elif labels_of(label, pf.module) != labels_of(pf.label, pf.module):
        assert label_at is not None
        problems.add(label_at, "label",
                     f"module '{pf.module}' already has a different label at {first_at}",
                     "give a module's label in one of its files only")


def _targets(d: EntityDef, salvage: Salvage, problems: Problems) -> dict[str, str]:
    """Link and table fields of one entity -> qualified names of the entities they name."""
    assert d.spec is not None
    out: dict[str, str] = {}
    for fname, f in d.spec.fields.items():
        if f.type not in ("link", "table"):
            continue
        ref = f.to if f.type == "link" else f.of
        qual = ref if "." in ref else f"{d.module}.{ref}"
        key = "to" if f.type == "link" else "of"
        target = salvage.defs.get(qual)
        if target is None:
            if not salvage.maybe_defined(qual):
                problems.add(d.doc.where(d.path + ("fields", fname, key)),
                             f"entities.{d.name}.fields.{fname}.{key}",
                             f"names unknown entity '{ref}'",
                             _entity_hint(ref, d.module, salvage, children=f.type == "table"))
            continue
        if target.spec is not None:
            out[fname] = qual
    return out


def _entity_hint(ref: str, module: str, salvage: Salvage, children: bool) -> str | None:
    """Suggest entities (child entities for a table field), written as the field would."""
    kinds = {q: bool(d.spec is not None and d.spec.child) for q, d in salvage.defs.items()}
    if children and not any(kinds.values()):
        children = False  # no child entity yet: list them all
    written = {q: (q.split(".")[1] if q.startswith(module + ".") else q)
               for q in salvage.defs if kinds[q] == children}
    names = sorted(written.values())
    if not names:
        return "no entity is defined yet" if not salvage.defs else None
    guess = did_you_mean(ref, names)
    if guess is None and "." in ref:  # right entity, wrong module?
        short = {q.split(".")[1]: w for q, w in written.items()}
        close = difflib.get_close_matches(ref.split(".")[1], list(short), n=1, cutoff=0.6)
        guess = f"did you mean '{short[close[0]]}'?" if close else None
    if len(names) <= 15:
        return "expected one of " + ", ".join(names) + (f"; {guess}" if guess else "")
    return guess


def _parents(salvage: Salvage, targets: dict[str, dict[str, str]], problems: Problems
             ) -> dict[str, tuple[str, str]]:
    """Child entity -> (parent entity, table field), reporting misuse of table fields."""
    parents: dict[str, tuple[str, str]] = {}
    for qual, d in salvage.defs.items():
        if d.spec is None:
            continue
        for fname, f in d.spec.fields.items():
            child = targets[qual].get(fname)
            if f.type != "table" or child is None:
                continue
            cdef = salvage.defs[child]
            assert cdef.spec is not None
            where = d.doc.where(d.path + ("fields", fname, "of"))
            path = f"entities.{d.name}.fields.{fname}.of"
            if not cdef.spec.child:
                if "child" not in cdef.dropped_keys:
                    problems.add(where, path, f"entity '{child}' is not a child entity",
                                 f"add 'child: true' to '{child}' so its rows belong to a "
                                 "parent, or use 'type: link' to refer to its records")
            elif child in parents:
                other = parents[child]
                problems.add(where, path,
                             f"child entity '{child}' is already the table of "
                             f"'{other[0]}.{other[1]}'",
                             "a child entity belongs to one table field; define another child")
            else:
                parents[child] = (qual, fname)
    return parents

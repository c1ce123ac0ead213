"""Load a Campo project's YAML into one validated :class:`~metamodel.model.Model`.

Phases (each collects every problem before the next runs; a later phase is skipped only
for the parts an earlier phase could not read):

1. read: every ``modules/**/*.yaml`` is composed with marks (:mod:`metamodel.source`);
2. shape: each document is validated against :class:`~metamodel.model.ModuleFile`;
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

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .checks import check_entities
from .errors import Location, Problems, expected_one_of
from .model import (
    BUILTIN_ROLES,
    DEFAULT_PERMISSIONS,
    Entity,
    EntitySpec,
    Model,
    Module,
    ModuleFile,
    Role,
    labels_of,
)
from .source import Document, read_yaml
from .validation import problems_from

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


def load(root: Path | str = ".", overlays: Sequence[Path | str] = ()) -> Model:
    """Load and validate the project at ``root``; raise DefinitionError listing every problem.

    ``overlays`` are reserved for site layers (added by the low-code issue).
    """
    root = Path(root)
    problems = Problems()
    docs = read_documents(root, "modules", problems)
    model = build_model(docs, problems, root=str(root))
    problems.raise_if_any()
    return model


def build_model(docs: Iterable[Document], problems: Problems, root: str = ".") -> Model:
    """Validate documents and resolve them into a Model (problems collected, not raised)."""
    files: list[tuple[Document, ModuleFile]] = []
    for doc in docs:
        if not isinstance(doc.value, dict):
            problems.add(doc.where(()), "", "a module file must be a mapping with a 'module:' key",
                         "start the file with 'module: <name>'")
            continue
        try:
            files.append((doc, ModuleFile.model_validate(doc.value)))
        except ValidationError as exc:
            problems.extend(problems_from(exc, ModuleFile, doc))
    roles = _resolve_roles(files, problems)
    modules, entities = _resolve_entities(files, roles, problems)
    check_entities(files, entities, roles, problems)
    return Model(modules=modules, entities=entities, roles=roles, root=root)


def _resolve_roles(files: list[tuple[Document, ModuleFile]], problems: Problems) -> dict[str, Role]:
    roles: dict[str, Role] = {
        name: Role(name, labels_of(None, name), (), True, None) for name in BUILTIN_ROLES
    }
    for doc, mf in files:
        for name, spec in mf.roles.items():
            where = doc.where_key(("roles", name))
            if name in roles:
                first = roles[name].location
                why = "is a built-in role" if roles[name].builtin else f"is already defined at {first}"
                problems.add(where, f"roles.{name}", f"role '{name}' {why}",
                             "choose another name, or use 'inherits:' to extend a role")
                continue
            roles[name] = Role(name, labels_of(spec.label, name), tuple(spec.inherits), False, where)
    for doc, mf in files:
        for name, spec in mf.roles.items():
            for i, parent in enumerate(spec.inherits):
                if parent not in roles:
                    problems.add(doc.where(("roles", name, "inherits", i)),
                                 f"roles.{name}.inherits[{i}]", f"unknown role '{parent}'",
                                 expected_one_of(parent, roles))
    # inheritance cycles
    for name, role in roles.items():
        seen: list[str] = []
        stack = list(role.inherits)
        while stack:
            r = stack.pop()
            if r == name:
                assert role.location is not None
                problems.add(role.location, f"roles.{name}.inherits",
                             f"role '{name}' inherits from itself through {' -> '.join(seen + [r])}",
                             "remove one of the 'inherits:' entries")
                break
            if r in seen or r not in roles:
                continue
            seen.append(r)
            stack.extend(roles[r].inherits)
    return roles


def _closure(roles: dict[str, Role], role: str) -> set[str]:
    out, stack = set(), [role]
    while stack:
        r = stack.pop()
        if r in out or r not in roles:
            continue
        out.add(r)
        stack.extend(roles[r].inherits)
    return out


def _permissions(spec: EntitySpec, roles: dict[str, Role]) -> dict[str, frozenset[str]]:
    declared: dict[str, Any] = dict(DEFAULT_PERMISSIONS)
    if spec.permissions is not None:
        declared = {"admin": DEFAULT_PERMISSIONS["admin"], **spec.permissions}
    out: dict[str, frozenset[str]] = {}
    for role in roles:
        actions: set[str] = set()
        for r in _closure(roles, role):
            actions.update(declared.get(r, ()))
        out[role] = frozenset(actions)
    return out


def _resolve_entities(
    files: list[tuple[Document, ModuleFile]], roles: dict[str, Role], problems: Problems
) -> tuple[dict[str, Module], dict[str, Entity]]:
    module_specs: dict[str, tuple[Location, Any]] = {}
    by_module: dict[str, dict[str, tuple[Document, EntitySpec]]] = {}
    for doc, mf in files:
        if mf.module not in module_specs:
            module_specs[mf.module] = (doc.where(("module",)), mf.label)
        elif mf.label is not None and module_specs[mf.module][1] is None:
            module_specs[mf.module] = (module_specs[mf.module][0], mf.label)
        ents = by_module.setdefault(mf.module, {})
        for name, spec in mf.entities.items():
            if name in ents:
                first = ents[name][0].where_key(("entities", name))
                problems.add(doc.where_key(("entities", name)), f"entities.{name}",
                             f"entity '{mf.module}.{name}' is already defined at {first}",
                             "an entity is defined in one file; rename one of them")
                continue
            ents[name] = (doc, spec)
    # resolve link/table targets
    all_names = {f"{m}.{e}" for m, es in by_module.items() for e in es}
    targets: dict[str, dict[str, str]] = {}
    for module, ents in by_module.items():
        for name, (doc, spec) in ents.items():
            t: dict[str, str] = {}
            for fname, f in spec.fields.items():
                if f.type not in ("link", "table"):
                    continue
                ref = f.to if f.type == "link" else f.of
                qual = ref if "." in ref else f"{module}.{ref}"
                key = "to" if f.type == "link" else "of"
                if qual not in all_names:
                    choices = [e for e in ents] + sorted(all_names)
                    problems.add(doc.where(("entities", name, "fields", fname, key)),
                                 f"entities.{name}.fields.{fname}.{key}",
                                 f"names unknown entity '{ref}'", expected_one_of(ref, choices))
                    continue
                t[fname] = qual
            targets[f"{module}.{name}"] = t
    # parents of child entities
    parents: dict[str, tuple[str, str]] = {}
    for module, ents in by_module.items():
        for name, (doc, spec) in ents.items():
            for fname, f in spec.fields.items():
                qual = targets[f"{module}.{name}"].get(fname)
                if f.type != "table" or qual is None:
                    continue
                cmod, cname = qual.split(".")
                cdoc, cspec = by_module[cmod][cname]
                where = doc.where(("entities", name, "fields", fname, "of"))
                path = f"entities.{name}.fields.{fname}.of"
                if not cspec.child:
                    problems.add(where, path, f"entity '{qual}' is not a child entity",
                                 f"add 'child: true' to '{qual}' so its rows belong to a parent")
                elif qual in parents:
                    other = parents[qual]
                    problems.add(where, path,
                                 f"child entity '{qual}' is already the table of "
                                 f"'{other[0]}.{other[1]}'",
                                 "a child entity belongs to one table field; define another child")
                else:
                    parents[qual] = (f"{module}.{name}", fname)
    modules: dict[str, Module] = {}
    entities: dict[str, Entity] = {}
    for module, ents in by_module.items():
        mod_ents: dict[str, Entity] = {}
        for name, (doc, spec) in ents.items():
            qual = f"{module}.{name}"
            ent = Entity(
                module=module, name=name, spec=spec,
                location=doc.where_key(("entities", name)), targets=targets.get(qual, {}),
                parent=parents.get(qual), permissions=_permissions(spec, roles),
                field_locations={f: doc.where_key(("entities", name, "fields", f))
                                 for f in spec.fields},
            )
            mod_ents[name] = ent
            entities[qual] = ent
        loc, label = module_specs[module]
        modules[module] = Module(module, labels_of(label, module), mod_ents, loc)
    return modules, entities

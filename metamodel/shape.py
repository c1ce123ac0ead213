"""Phase 2 of loading: check each module file's shape and keep every part that is sound.

A file is validated whole against :class:`~metamodel.spec.ModuleFile` first; that reports
every shape problem of the file in one go and is the fast path when there are none. When
it fails, the file is taken apart and each piece (module name, label, each role, each
entity, each field of an entity) is validated on its own, silently, so that one bad field
does not hide the cross-reference checks of the rest of its entity, nor one bad entity
those of its neighbours. What could not be salvaged is remembered by name, so later
phases neither report a reference to it as unknown nor check it twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .errors import Location, Problems
from .source import Document
from .spec import NAME_PATTERN, EntitySpec, LabelText, ModuleFile, RoleSpec, field_adapter
from .validation import problems_from

_NAME = re.compile(NAME_PATTERN)
_LABEL: TypeAdapter[Any] = TypeAdapter(LabelText | None)


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid snake_case name (at most 63 characters)."""
    return isinstance(value, str) and len(value) <= 63 and bool(_NAME.match(value))


def is_extension(key: Any) -> bool:
    """Top-level ``x-...`` keys are ignored: a place for YAML anchors shared by fields."""
    return isinstance(key, str) and key.startswith("x-")


@dataclass
class EntityDef:
    """One entity as written in one file, with what failed validation."""

    module: str
    name: str
    doc: Document
    #: the validated spec; ``None`` when the entity is too broken to check further
    spec: EntitySpec | None
    #: every field name written under ``fields:`` that is a valid name (even broken ones)
    field_names: tuple[str, ...] = ()
    #: fields that failed validation (left out of ``spec``)
    broken_fields: frozenset[str] = frozenset()
    #: entity-level keys that failed validation (left out of ``spec``)
    dropped_keys: frozenset[str] = frozenset()

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def path(self) -> tuple[str, str]:
        return ("entities", self.name)

    @property
    def location(self) -> Location:
        return self.doc.where_key(self.path)


@dataclass
class ParsedFile:
    """A module file after the shape phase."""

    doc: Document
    #: the module name, or ``None`` when it is missing or invalid
    module: str | None
    label: LabelText | None
    entities: dict[str, EntityDef] = field(default_factory=dict)
    #: role name -> spec, or ``None`` for a role that failed validation
    roles: dict[str, RoleSpec | None] = field(default_factory=dict)
    #: ``to:``/``of:`` values written in fields that failed validation
    loose_refs: set[str] = field(default_factory=set)
    complete: bool = True


def parse_file(doc: Document, problems: Problems) -> ParsedFile | None:
    """Validate one document as a module file; report problems and salvage what is sound."""
    if not isinstance(doc.value, dict):
        problems.add(doc.where(()), "", "a module file must be a mapping with a 'module:' key",
                     "start the file with 'module: <name>'")
        return None
    value = {k: v for k, v in doc.value.items() if not is_extension(k)}
    try:
        mf = ModuleFile.model_validate(value)
    except ValidationError as exc:
        problems.extend(p for p in problems_from(exc, ModuleFile, doc)
                        if p.location not in doc.unreadable)
        return _salvage(doc)
    raw_entities = doc.value.get("entities") or {}
    pf = ParsedFile(doc, mf.module, mf.label, roles=dict(mf.roles))
    for name, spec in mf.entities.items():
        pf.entities[name] = EntityDef(mf.module, name, doc, spec,
                                      field_names=tuple(raw_entities[name]["fields"]))
    return pf


def _salvage(doc: Document) -> ParsedFile:
    raw: dict[str, Any] = doc.value
    module = raw.get("module")
    try:
        label = _LABEL.validate_python(raw.get("label"))
    except ValidationError:
        label = None
    pf = ParsedFile(doc, module if is_name(module) else None, label, complete=False)
    roles = raw.get("roles")
    if isinstance(roles, dict):
        for name, value in roles.items():
            if not is_name(name):
                continue
            try:
                pf.roles[name] = RoleSpec.model_validate(value)
            except ValidationError:
                pf.roles[name] = None
    entities = raw.get("entities")
    if isinstance(entities, dict):
        for name, value in entities.items():
            if is_name(name):
                pf.entities[name] = _salvage_entity(pf, doc, str(name), value)
    return pf


def _salvage_entity(pf: ParsedFile, doc: Document, name: str, raw: Any) -> EntityDef:
    module = pf.module or ""
    try:
        spec = EntitySpec.model_validate(raw)
        return EntityDef(module, name, doc, spec, field_names=tuple(raw["fields"]))
    except ValidationError:
        pass
    if not isinstance(raw, dict):
        return EntityDef(module, name, doc, None)
    fields_raw = raw.get("fields")
    good: dict[str, Any] = {}
    broken: set[str] = set()
    names: list[str] = []
    if isinstance(fields_raw, dict):
        for fname, value in fields_raw.items():
            if not is_name(fname):
                broken.add(str(fname))
                _collect_refs(pf, value)
                continue
            names.append(fname)
            try:
                good[fname] = field_adapter().validate_python(value)
            except ValidationError:
                broken.add(fname)
                _collect_refs(pf, value)
    else:
        return EntityDef(module, name, doc, None)
    rest = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items() if k != "fields"}
    dropped: set[str] = set()
    for _ in range(3):
        try:
            spec = EntitySpec.model_validate({**rest, "fields": good})
        except ValidationError as exc:
            progress = False
            for e in exc.errors():
                loc = e["loc"]
                if not loc or loc[0] not in rest:
                    continue
                key, value = str(loc[0]), rest[loc[0]]
                if len(loc) > 1 and isinstance(value, dict) and len(value) > 1:
                    progress |= value.pop(loc[1], None) is not None  # one bad entry of a mapping
                    dropped.add(f"{key}.{loc[1]}")
                else:
                    progress |= rest.pop(key, None) is not None
                    dropped.add(key)
            if not progress:
                break
            continue
        return EntityDef(module, name, doc, spec, tuple(names), frozenset(broken),
                         frozenset(dropped))
    return EntityDef(module, name, doc, None, tuple(names), frozenset(broken), frozenset(dropped))


def _collect_refs(pf: ParsedFile, value: Any) -> None:
    if isinstance(value, dict):
        for key in ("to", "of"):
            ref = value.get(key)
            if isinstance(ref, str):
                pf.loose_refs.add(ref)


@dataclass
class Salvage:
    """What the shape phase could not validate, so later phases stay quiet about it."""

    #: every entity written with a valid name, by qualified name (first definition wins)
    defs: dict[str, EntityDef] = field(default_factory=dict)
    #: roles whose definition failed validation
    broken_roles: set[str] = field(default_factory=set)
    #: ``to:``/``of:`` values of fields that failed validation
    loose_refs: set[str] = field(default_factory=set)
    #: entities of files whose module name is missing or invalid
    orphans: set[str] = field(default_factory=set)

    def add_file(self, pf: ParsedFile) -> None:
        """Remember what ``pf`` could not contribute to resolution."""
        self.loose_refs |= pf.loose_refs
        if pf.module is not None:
            return
        self.orphans |= set(pf.entities)
        for d in pf.entities.values():
            for f in (d.spec.fields.values() if d.spec is not None else ()):
                ref = getattr(f, "to", None) or getattr(f, "of", None)
                if isinstance(ref, str):
                    self.loose_refs.add(ref)

    def maybe_defined(self, ref: str) -> bool:
        """Whether an unresolvable reference may name an entity of a module-less file."""
        return ref.split(".")[-1] in self.orphans

    def maybe_referenced(self, name: str) -> bool:
        """Whether a field that failed validation may point at entity ``name``."""
        return any(r.split(".")[-1] == name for r in self.loose_refs)

"""The resolved module language: entities, modules, roles and the model the engine reads.

:mod:`metamodel.loader` builds these from the specs of :mod:`metamodel.spec` (what the YAML
says) after merging files, resolving links and expanding permissions; every object here is
immutable and knows where it was defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import Location
from .spec import EntitySpec, Labels, ValidationSpec, labels_of

if TYPE_CHECKING:
    from .behaviour import ExprSite, Series, Workflow


@dataclass(frozen=True)
class Entity:
    """A validated entity with its module, table name and resolved links."""

    module: str
    name: str
    spec: EntitySpec
    location: Location
    #: link and table fields -> qualified name (``module.entity``) of the target entity
    targets: dict[str, str]
    #: for a child entity: (qualified parent entity, table field name)
    parent: tuple[str, str] | None
    #: role -> allowed actions, with defaults applied and role inheritance expanded
    permissions: dict[str, frozenset[str]]
    field_locations: dict[str, Location] = field(default_factory=dict)
    #: the (merged) :class:`~metamodel.source.Document` the entity was read from; its
    #: paths start with ``("entities", name)``; see :meth:`where`
    doc: Any = field(default=None, compare=False, repr=False)

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def table(self) -> str:
        return f"{self.module}_{self.name}"

    @property
    def fields(self) -> dict[str, Any]:
        return self.spec.fields

    @property
    def labels(self) -> Labels:
        return labels_of(self.spec.label, self.name)

    def stored_fields(self) -> dict[str, Any]:
        """Fields that are columns of this entity's own table.

        ``table`` fields are not, nor virtual computed fields (``stored: false``).
        """
        return {k: f for k, f in self.spec.fields.items()
                if f.type != "table" and not f.is_virtual}

    # -- behaviour (issue 3); see metamodel/README.md "Resolved behaviour"

    def where(self, *path: Any) -> Location:
        """Location of the value at ``path`` under this entity (e.g. ``"fields", "x"``)."""
        if self.doc is None:
            return self.field_locations.get(path[1], self.location) if len(path) > 1 and \
                path[0] == "fields" else self.location
        loc: Location = self.doc.where(("entities", self.name, *path))
        return loc

    def where_key(self, *path: Any) -> Location:
        """Location of the key that ends ``path`` under this entity."""
        if self.doc is None:
            return self.where(*path)
        loc: Location = self.doc.where_key(("entities", self.name, *path))
        return loc

    @property
    def validations(self) -> tuple[ValidationSpec, ...]:
        """Entity-level rules (overlay rules appended or replacing by ``id``)."""
        return tuple(self.spec.validations)

    @cached_property
    def series(self) -> Series | None:
        """The parsed naming series (``naming.series``), or ``None``."""
        from .behaviour import parse_series

        n = self.spec.naming
        return parse_series(n.series, n.field) if n is not None and n.series else None

    @cached_property
    def workflow(self) -> Workflow | None:
        """The resolved workflow (every enum value a state), or ``None``."""
        from .behaviour import resolve_workflow

        wf = self.spec.workflow
        return resolve_workflow(wf, self.spec.fields.get(wf.field)) if wf is not None else None

    @cached_property
    def computed_order(self) -> tuple[str, ...]:
        """Computed fields (stored and virtual), each after the computed fields it reads."""
        from .behaviour import dependency_order, self_refs

        deps = {k: self_refs(f.computed) for k, f in self.spec.fields.items()
                if f.computed is not None and f.type != "table"}
        return tuple(dependency_order(deps)[0])

    def computed_fields(self) -> dict[str, Any]:
        """Computed fields (stored and virtual) in dependency order."""
        return {k: self.spec.fields[k] for k in self.computed_order}

    def virtual_fields(self) -> dict[str, Any]:
        """Computed fields with ``stored: false`` (no column), in dependency order."""
        return {k: f for k, f in self.computed_fields().items() if f.is_virtual}

    def fetched_fields(self) -> dict[str, tuple[str, str]]:
        """Fields with ``fetch_from`` -> (link field, field of the linked entity)."""
        out: dict[str, tuple[str, str]] = {}
        for k, f in self.spec.fields.items():
            if f.fetch_from is not None:
                link, _, target = f.fetch_from.partition(".")
                out[k] = (link, target)
        return out

    def derived_fields(self) -> frozenset[str]:
        """Fields the server fills and clients cannot write: computed, fetched, the
        workflow's state field and the field a naming series fills."""
        out = {k for k, f in self.spec.fields.items()
               if f.computed is not None or f.fetch_from is not None}
        if self.spec.workflow is not None:
            out.add(self.spec.workflow.field)
        if self.series is not None:
            out.add(self.series.field)
        return frozenset(out)

    def expressions(self) -> list[ExprSite]:
        """Every expression written on this entity, with its kind and YAML path."""
        from .behaviour import ExprSite

        base = ("entities", self.name)
        out: list[ExprSite] = []
        for fname, f in self.spec.fields.items():
            for key, src in f.expressions().items():
                out.append(ExprSite(key, src, base + ("fields", fname, key), fname))
        for i, v in enumerate(self.spec.validations):
            out.append(ExprSite("validation", v.rule, base + ("validations", i, "rule"),
                                v.field, i))
        if self.spec.workflow is not None:
            for i, t in enumerate(self.spec.workflow.transitions):
                if t.guard is not None:
                    out.append(ExprSite("guard", t.guard,
                                        base + ("workflow", "transitions", i, "guard"), None, i))
        return out

    def allows(self, roles: frozenset[str] | set[str], action: str) -> bool:
        """Whether any of ``roles`` may perform ``action`` on this entity."""
        return any(action in self.permissions.get(r, ()) for r in roles)


@dataclass(frozen=True)
class Module:
    """A module: a name, labels and its entities (by short name)."""

    name: str
    labels: Labels
    entities: dict[str, Entity]
    location: Location


@dataclass(frozen=True)
class Role:
    """A built-in or custom role."""

    name: str
    labels: Labels
    inherits: tuple[str, ...]
    builtin: bool
    location: Location | None


@dataclass(frozen=True)
class Model:
    """Everything the engine compiles: modules, entities (by qualified name) and roles."""

    modules: dict[str, Module]
    entities: dict[str, Entity]
    roles: dict[str, Role]
    root: str = "."
    #: entities loaded with problems (a field or key failed validation): later checks of
    #: what they contain (expressions) are skipped, the problems already say what is wrong
    incomplete: frozenset[str] = frozenset()
    #: overlay folders applied on top of ``root``, in order
    overlays: tuple[str, ...] = ()

    def entity(self, qualname: str) -> Entity:
        """The entity named ``module.entity`` (KeyError if unknown)."""
        return self.entities[qualname]

    def role_closure(self, role: str) -> frozenset[str]:
        """``role`` plus every role it inherits from, transitively."""
        seen: set[str] = set()
        stack = [role]
        while stack:
            r = stack.pop()
            if r in seen or r not in self.roles:
                continue
            seen.add(r)
            stack.extend(self.roles[r].inherits)
        return frozenset(seen)

"""Load-time checks of the ``allocations:`` and ``exports:`` keys of entities.

Compile phase (:func:`check_capabilities`): every field an allocation names must exist with
a fitting type, the rows entity must be a top-level entity, ``when`` compiles to a boolean
on the entity and every ``weight`` to a number on the rows' entity (reading the row's own
fields); an export's template file must exist and its ``units`` must convert from the
field's unit. Problems are located like every other (``file:line:col: key.path: message``).
Run time: :func:`engine.rules.capabilities_for` gives the compiled expressions to the API
(kept in the model's :class:`~engine.rules.project.CompiledProject`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.expr import ExprError, Expression, Type, compile, scope_for_entity
from metamodel import Model
from metamodel.capabilities import AllocationSpec
from metamodel.errors import Problems, did_you_mean
from metamodel.model import Entity

from .compiled import sound
from .locate import expression_location

_NUMERIC = ("decimal", "int", "float")


@dataclass
class CompiledAllocation:
    """An allocation with its compiled expressions."""

    source: str
    name: str
    spec: AllocationSpec
    when: Expression | None
    weights: list[Expression] = field(default_factory=list)


@dataclass
class Capabilities:
    """Compiled allocations by ``(entity, name)`` and export template paths."""

    allocations: dict[tuple[str, str], CompiledAllocation] = field(default_factory=dict)
    templates: dict[tuple[str, str], Path] = field(default_factory=dict)


class _Checker:
    def __init__(self, model: Model, problems: Problems) -> None:
        self.model, self.problems = model, problems

    def add(self, ent: Entity, path: tuple[str | int, ...], message: str,
            hint: str | None = None) -> None:
        full = ("entities", ent.name, *path)
        self.problems.add(ent.where(*path), ".".join(str(p) for p in full), message, hint)

    def field(self, ent: Entity, target: Entity, name: str, path: tuple[str | int, ...],
              types: tuple[str, ...], what: str) -> bool:
        """Whether ``target`` (named in ``ent``'s YAML at ``path``) has a fitting field."""
        f = target.fields.get(name)
        if f is None:
            guess = did_you_mean(name, sorted(target.fields))
            self.add(ent, path, f"names unknown field '{name}' of '{target.qualname}'", guess)
            return False
        if f.type not in types or getattr(f, "is_virtual", False):
            self.add(ent, path, f"'{name}' of '{target.qualname}' is a {f.type} field; {what}",
                     "name a stored " + " or ".join(types) + " field")
            return False
        return True

    def expression(self, ent: Entity, target: Entity, path: tuple[str | int, ...], source: str,
                   expect: Type) -> Expression | None:
        try:
            expr = compile(source, scope_for_entity(self.model, target.qualname), expect=expect)
        except ExprError as err:
            full = ("entities", ent.name, *path)
            loc = expression_location(ent.doc, full, source, err.offset)
            self.problems.add(loc, ".".join(str(p) for p in full), err.message, err.hint)
            return None
        if expr.refs.links or expr.refs.children or expr.refs.parent:
            self.add(ent, path, "reads a linked record or a child table; an allocation reads "
                     "the fields of the record itself",
                     "copy the value into a field with fetch_from or computed")
            return None
        return expr

    def allocation(self, ent: Entity, name: str, spec: AllocationSpec
                   ) -> CompiledAllocation | None:
        base: tuple[str | int, ...] = ("allocations", name)
        rows_name = spec.rows if "." in spec.rows else f"{ent.module}.{spec.rows}"
        rows = self.model.entities.get(rows_name)
        if rows is None or rows.parent is not None:
            self.add(ent, (*base, "rows"), f"names unknown entity '{spec.rows}'"
                     if rows is None else f"'{spec.rows}' is a child entity",
                     "name a top-level entity (module.entity)")
            return None
        ok = True
        plain = ("string", "int", "date", "enum", "link", "bool")
        for row_field, own in spec.match.items():
            at = (*base, "match", row_field)
            ok &= self.field(ent, rows, row_field, at, plain, "match on a plain value")
            ok &= self.field(ent, ent, own, at, plain, "match on a plain value")
        if spec.count_into is not None:
            ok &= self.field(ent, ent, spec.count_into, (*base, "count_into"), ("int",),
                             "it receives a count")
        for role in spec.roles or ():
            if role not in self.model.roles and role not in ("admin", "supervisor", "operator",
                                                             "viewer", "scada"):
                self.add(ent, (*base, "roles"), f"names unknown role '{role}'")
                ok = False
        when = None
        if spec.when is not None:
            when = self.expression(ent, ent, (*base, "when"), spec.when, Type.BOOL)
            ok &= when is not None
        weights = []
        for i, sp in enumerate(spec.split):
            at = (*base, "split", i)
            ok &= self.field(ent, ent, sp.total, (*at, "total"), _NUMERIC, "a total is a number")
            ok &= self.field(ent, rows, sp.into, (*at, "into"), ("decimal", "int"),
                             "shares are exact decimals or whole numbers")
            if sp.factor is not None:
                ok &= self.field(ent, ent, sp.factor, (*at, "factor"), ("decimal", "float"),
                                 "a factor is a number")
            w = self.expression(ent, rows, (*at, "weight"), sp.weight, Type.NUMBER)
            ok &= w is not None
            if w is not None:
                weights.append(w)
        return CompiledAllocation(ent.qualname, name, spec, when, weights) if ok else None

    def template(self, ent: Entity, name: str) -> Path | None:
        spec = ent.spec.exports[name]
        root = Path(str(getattr(self.model, "root", ".")))
        path = (root / ent.location.file).parent / spec.template
        if not path.is_file():
            self.add(ent, ("exports", name, "template"), f"template file '{spec.template}' "
                     f"not found (looked for {path})", "the path is relative to the module file")
            return None
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        from engine.units import UnitError, check_conversion
        try:
            ImmutableSandboxedEnvironment().parse(path.read_text(encoding="utf-8"))
        except TemplateSyntaxError as err:
            self.add(ent, ("exports", name, "template"), f"{spec.template}:{err.lineno}: "
                     f"{err.message}", "fix the template's syntax")
            return None
        for fname in spec.expand:
            f = ent.fields.get(fname)
            if f is None or f.type != "link":
                self.add(ent, ("exports", name, "expand"), f"'{fname}' is not a link field "
                         f"of '{ent.qualname}'", did_you_mean(fname, [
                             n for n, x in ent.fields.items() if x.type == "link"]))
        for fname, unit in spec.units.items():
            f = ent.fields.get(fname)
            if f is None or getattr(f, "unit", None) is None:
                self.add(ent, ("exports", name, "units", fname),
                         f"'{fname}' is not a field with a unit of '{ent.qualname}'")
                continue
            try:
                check_conversion(str(f.unit), unit)
            except UnitError as err:
                self.add(ent, ("exports", name, "units", fname), str(err))
        return path


def check_capabilities(model: Model, problems: Problems) -> Capabilities:
    """Check and compile every entity's allocations and exports; report problems."""
    out = Capabilities()
    checker = _Checker(model, problems)
    for qual, ent in model.entities.items():
        if not sound(model, ent):
            continue
        for name, spec in ent.spec.allocations.items():
            compiled = checker.allocation(ent, name, spec)
            if compiled is not None:
                out.allocations[(qual, name)] = compiled
        for name in ent.spec.exports:
            path = checker.template(ent, name)
            if path is not None:
                out.templates[(qual, name)] = path
    return out

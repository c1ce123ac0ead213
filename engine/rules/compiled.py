"""Compile every expression of a model once, at load time, against the model's types.

Compile phase (``compile_rules``): for each entity, build its scope (``self`` with its
fields, links one hop, child tables, virtual computed fields; ``parent`` for a child
entity; ``user``), compile each :class:`metamodel.behaviour.ExprSite` with the type its
place needs, and turn every :class:`~engine.expr.ExprError` into a located
:class:`metamodel.errors.Problem`. Run time: the API reads the compiled
:class:`~engine.expr.Expression` objects from :func:`engine.rules.rules_for` (kept in the
model's :class:`~engine.rules.project.CompiledProject`, never in the model) and evaluates
them.

Example::

    from engine.rules import load_project, rules_for
    model = load_project(".")                       # DefinitionError lists every problem
    er = rules_for(model).entity("maintenance.work_order")
    for name, expr in er.computed.items():          # dependency order
        row[name] = expr.evaluate(ctx)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from engine.expr import (
    Context,
    EvalError,
    ExprError,
    Expression,
    FieldType,
    ObjectType,
    Scope,
    Type,
    compile,
    scope_for_entity,
)
from engine.expr.entities import FIELD_TYPES, field_type
from metamodel import Model
from metamodel.behaviour import ExprSite
from metamodel.errors import Problems
from metamodel.model import Entity
from metamodel.source import dotted
from metamodel.spec import ValidationSpec

from .locate import expression_location

log = logging.getLogger(__name__)

_BOOL_KINDS = frozenset({"visible_if", "required_if", "readonly_if", "validation", "guard"})
_CONVERT = {
    Type.STRING: "convert with string(...)", Type.NUMBER: "convert with number(...)",
    Type.DATE: "convert with date(...)", Type.DATETIME: "convert with datetime(...)",
}


@dataclass
class EntityRules:
    """The compiled expressions of one entity."""

    entity: Entity
    scope: Scope
    #: computed fields (stored and virtual) in dependency order
    computed: dict[str, Expression] = field(default_factory=dict)
    #: fields whose default is an expression (``default: '=today()'``)
    defaults: dict[str, Expression] = field(default_factory=dict)
    visible_if: dict[str, Expression] = field(default_factory=dict)
    required_if: dict[str, Expression] = field(default_factory=dict)
    readonly_if: dict[str, Expression] = field(default_factory=dict)
    #: entity-level rules, in order, each with its spec (message, field, id)
    validations: list[tuple[ValidationSpec, Expression]] = field(default_factory=list)
    #: transition index (into ``entity.workflow.transitions``) -> compiled guard
    guards: dict[int, Expression] = field(default_factory=dict)

    def guard(self, action: str, state: str) -> Expression | None:
        """The guard of the transition ``action`` from ``state`` (``None``: no guard)."""
        wf = self.entity.workflow
        if wf is None:
            return None
        for i, t in enumerate(wf.transitions):
            if t.action == action and state in t.sources():
                return self.guards.get(i)
        return None


@dataclass
class Rules:
    """Compiled expressions of every entity of a model."""

    entities: dict[str, EntityRules] = field(default_factory=dict)

    def entity(self, qualname: str) -> EntityRules:
        """The rules of entity ``module.entity`` (KeyError if unknown)."""
        return self.entities[qualname]


def scope_with_virtuals(model: Model, ent: Entity, *, user: bool = True) -> Scope:
    """The scope of ``ent``'s expressions: :func:`scope_for_entity` plus virtual fields."""
    kwargs: dict[str, Any] = {} if user else {"user": None}
    scope = scope_for_entity(model, ent.qualname, **kwargs)
    virtual = ent.virtual_fields()
    if not virtual or scope.record is None:
        return scope
    fields: dict[str, FieldType] = dict(scope.record.fields)
    fields.update({k: field_type(f) for k, f in virtual.items()})
    return Scope(record=ObjectType(scope.record.name, fields), parent=scope.parent,
                 user=scope.user, variables=scope.variables, functions=scope.functions)


def _expected(ent: Entity, site: ExprSite) -> Type | None:
    if site.kind in _BOOL_KINDS:
        return Type.BOOL
    f = ent.fields[site.field or ""]
    t = FIELD_TYPES[f.type]
    return None if t in (Type.ANY, Type.ROWS) else t


def _compile_site(ent: Entity, site: ExprSite, scope: Scope, user_scope: Scope | None
                  ) -> Expression:
    expect = _expected(ent, site)
    use = user_scope if site.kind != "computed" and user_scope is not None else scope
    try:
        expr = compile(site.source, use, expect=expect)
    except ExprError as err:
        if site.kind == "computed" and err.message.startswith("'user' is not available"):
            raise ExprError(err.message, err.offset, "a computed value is the same for every "
                            "user; use 'user' in rules (visible_if, validations, guards) or "
                            "defaults") from None
        if err.hint is None and expect in _CONVERT and err.message.startswith("expected "):
            raise ExprError(err.message, err.offset, _CONVERT[expect]) from None
        raise
    f = ent.fields.get(site.field or "")
    if site.kind in ("computed", "default") and f is not None and f.type == "enum" \
            and expr.constant:
        try:
            value = expr.evaluate(Context())
        except EvalError:
            value = None
        if value is not None and value not in f.codes():
            raise ExprError(f"'{value}' is not one of the enum's codes", 0,
                            "expected one of " + ", ".join(sorted(f.codes())))
    return expr


def sound(model: Model, ent: Entity) -> bool:
    """Whether ``ent`` and everything its scope reads loaded without problems."""
    if ent.qualname in model.incomplete:
        return False
    for fname, f in ent.fields.items():
        if f.type in ("link", "table") and fname not in ent.targets:
            return False
    related = set(ent.targets.values()) | ({ent.parent[0]} if ent.parent else set())
    return not (related & model.incomplete) and all(q in model.entities for q in related)


def compile_entity(model: Model, ent: Entity, problems: Problems) -> EntityRules:
    """Compile every expression of ``ent``; each failure becomes a located problem."""
    scope = scope_with_virtuals(model, ent, user=False)
    user_scope = scope_with_virtuals(model, ent)
    out = EntityRules(ent, user_scope)
    compiled: dict[tuple[str, str | None, int | None], Expression] = {}
    for site in ent.expressions():
        if not site.source.strip():
            continue  # an empty expression is reported by the metamodel
        try:
            compiled[(site.kind, site.field, site.index)] = _compile_site(ent, site, scope,
                                                                          user_scope)
        except ExprError as err:
            scalar = ("=" + site.source) if site.kind == "default" else site.source
            loc = expression_location(ent.doc, site.path, scalar, site.offset + err.offset)
            problems.add(loc, dotted(site.path), err.message, err.hint)
    for name in ent.computed_order:
        if (e := compiled.get(("computed", name, None))) is not None:
            out.computed[name] = e
    for (kind, fname, index), e in compiled.items():
        if kind in ("default", "visible_if", "required_if", "readonly_if"):
            getattr(out, kind if kind != "default" else "defaults")[fname or ""] = e
        elif kind == "validation" and index is not None:
            out.validations.append((ent.spec.validations[index], e))
        elif kind == "guard" and index is not None:
            out.guards[index] = e
    return out


def compile_rules(model: Model, problems: Problems) -> Rules:
    """Compile the expressions of every sound entity of ``model`` (problems collected)."""
    rules = Rules()
    for qual, ent in model.entities.items():
        if sound(model, ent):
            rules.entities[qual] = compile_entity(model, ent, problems)
    return rules

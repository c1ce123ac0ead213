"""Scopes for the model's entities: what ``self``, ``parent``, links and child tables hold.

:func:`scope_for_entity` reads a loaded :class:`metamodel.Model`: an entity's fields (and
its system columns) become ``self``; a link field can be followed one hop
(``self.field_area.name``); a table field's columns can be aggregated
(``sum(self.readings.pressure_psi)``); a child entity gets ``parent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metamodel import Model
from metamodel.model import Entity

from .scope import DEFAULT_USER, FieldType, ObjectType, Scope, Type

#: field type of the YAML language -> type in expressions
FIELD_TYPES: dict[str, Type] = {
    "string": Type.STRING, "text": Type.STRING, "enum": Type.STRING,
    "int": Type.NUMBER, "decimal": Type.NUMBER, "float": Type.NUMBER,
    "bool": Type.BOOL, "date": Type.DATE, "datetime": Type.DATETIME,
    "json": Type.ANY, "attachment": Type.ANY, "link": Type.NUMBER, "table": Type.ROWS,
}

_SYSTEM: dict[str, FieldType] = {
    "id": FieldType(Type.NUMBER),
    "created_at": FieldType(Type.DATETIME), "created_by": FieldType(Type.STRING),
    "updated_at": FieldType(Type.DATETIME), "updated_by": FieldType(Type.STRING),
    "version": FieldType(Type.NUMBER),
}
_CHILD_SYSTEM: dict[str, FieldType] = {
    "parent_id": FieldType(Type.NUMBER), "idx": FieldType(Type.NUMBER),
}


def field_type(spec: Any) -> FieldType:
    """The expression type of one field spec (without following links or tables)."""
    t = FIELD_TYPES[spec.type]
    codes = tuple(spec.codes()) if spec.type == "enum" else None
    return FieldType(t, enum=codes)


def _columns(model: Model, ent: Entity, hop: bool) -> dict[str, FieldType]:
    """An entity's stored fields plus system columns; ``hop`` follows its links one step."""
    out: dict[str, FieldType] = dict(_SYSTEM)
    if ent.parent is not None:
        out.update(_CHILD_SYSTEM)
    for name, spec in ent.stored_fields().items():
        ft = field_type(spec)
        if spec.type == "link":
            target = model.entities.get(ent.targets.get(name, ""))
            if target is not None:
                fields = _columns(model, target, hop=False) if hop else {}
                ft = FieldType(Type.NUMBER, target=ObjectType(target.qualname, fields))
        out[name] = ft
    return out


def record_type(model: Model, qualname: str) -> ObjectType:
    """``self`` for an entity: its fields, links one hop deep, child tables' columns."""
    ent = model.entity(qualname)
    fields = _columns(model, ent, hop=True)
    for name, spec in ent.fields.items():
        if spec.type != "table":
            continue
        child = model.entities.get(ent.targets.get(name, ""))
        columns = _columns(model, child, hop=False) if child is not None else {}
        fields[name] = FieldType(Type.ROWS, rows=ObjectType(
            child.qualname if child is not None else name, columns))
    return ObjectType(qualname, fields)


def scope_for_entity(model: Model, qualname: str, *, user: ObjectType | None = DEFAULT_USER,
                     variables: Mapping[str, FieldType] | None = None,
                     functions: frozenset[str] | None = None) -> Scope:
    """The scope of expressions written on entity ``qualname`` (``module.entity``)."""
    ent = model.entity(qualname)
    parent = None
    if ent.parent is not None:
        p = model.entity(ent.parent[0])
        parent = ObjectType(p.qualname, _columns(model, p, hop=False))
    return Scope(record=record_type(model, qualname), parent=parent, user=user,
                 variables=dict(variables or {}), functions=functions)
